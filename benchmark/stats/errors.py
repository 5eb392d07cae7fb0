"""Errors of the statistics package and the input checks shared by its modules."""

from __future__ import annotations

from typing import Any

import numpy as np


class StatsError(ValueError):
    """A statistic cannot be computed on this input; the message says why."""


class SubjectMismatchError(StatsError):
    """Runs that are compared were scored on different subjects."""


def _as_matrix(values: Any) -> np.ndarray:
    m = np.asarray(values, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2:
        raise StatsError(f"expected a subjects (× seeds) array, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise StatsError("values contain NaN/inf")
    return m


def _need_subjects(n: int, what: str) -> None:
    if n < 2:
        raise StatsError(f"{what} needs at least 2 subjects, got {n}: with one subject there is no between-subject "
                         "variation to estimate, so no confidence interval or test can be made")
