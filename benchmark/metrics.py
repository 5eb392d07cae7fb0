"""HR metrics of one run: window-level values and SEs, subject-level bootstrap CIs.

Each metric is a small public function on paired arrays of HR estimates (bpm); :func:`hr_metrics`
bundles them. Standard errors follow the usual definitions (the toolbox's RMSE "standard error" is
non-standard; ours is the delta-method SE of √MSE) but treat windows as independent; the CIs come
from :mod:`benchmark.stats` (subject bootstrap) — the one statistics module.

Pearson r of HR is kept for comparison with published tables, but over a wide HR range (the synthetic
world draws 45–150 bpm) any method that roughly tracks HR scores r ≈ 1, so r says little there; the
leaderboard adds Lin's CCC and the within-subject repeated-measures correlation.

>>> import numpy as np
>>> mae(np.array([70.0, 80.0]), np.array([72.0, 79.0]))
1.5
>>> round(rmse(np.array([70.0, 80.0]), np.array([72.0, 79.0])), 4)
1.5811
>>> round(mape(np.array([70.0, 80.0]), np.array([70.0, 100.0])), 1)
10.0
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd


def _check(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim != 1:
        raise ValueError(f"pred and ref must be 1-D and equal length, got {pred.shape} and {ref.shape}")
    if len(pred) == 0:
        raise ValueError("no HR pairs to score")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(ref))):
        raise ValueError("HR arrays contain NaN/inf")
    return pred, ref


def mae(pred: np.ndarray, ref: np.ndarray) -> float:
    pred, ref = _check(pred, ref)
    return float(np.mean(np.abs(pred - ref)))


def rmse(pred: np.ndarray, ref: np.ndarray) -> float:
    pred, ref = _check(pred, ref)
    return float(math.sqrt(np.mean((pred - ref) ** 2)))


def mape(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute percentage error in % of the reference HR."""
    pred, ref = _check(pred, ref)
    return float(100.0 * np.mean(np.abs(pred - ref) / np.abs(ref)))


def pearson_r(pred: np.ndarray, ref: np.ndarray) -> float:
    pred, ref = _check(pred, ref)
    if len(pred) < 2 or pred.std() == 0 or ref.std() == 0:
        return float("nan")
    return float(np.corrcoef(pred, ref)[0, 1])


def standard_errors(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """SE of MAE, RMSE, MAPE (sample std / √n, ddof=1) and of Pearson r (√((1−r²)/(n−2)))."""
    pred, ref = _check(pred, ref)
    n = len(pred)
    e = pred - ref
    if n < 2:
        return {"mae": float("nan"), "rmse": float("nan"), "mape": float("nan"), "pearson": float("nan")}
    se_abs = float(np.std(np.abs(e), ddof=1) / math.sqrt(n))
    mse = float(np.mean(e**2))
    se_mse = float(np.std(e**2, ddof=1) / math.sqrt(n))
    se_rmse = se_mse / (2 * math.sqrt(mse)) if mse > 0 else 0.0  # delta method
    se_mape = float(100.0 * np.std(np.abs(e) / np.abs(ref), ddof=1) / math.sqrt(n))
    r = pearson_r(pred, ref)
    se_r = math.sqrt((1 - r * r) / (n - 2)) if n > 2 and math.isfinite(r) else float("nan")
    return {"mae": se_abs, "rmse": se_rmse, "mape": se_mape, "pearson": se_r}


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mae": mae,
    "rmse": rmse,
    "mape": mape,
    "pearson": pearson_r,
}

#: Stable public names (DESIGN.md); ``test/`` is prefixed by the runner.
METRIC_NAMES = {"mae": "mae_bpm", "rmse": "rmse_bpm", "mape": "mape", "pearson": "pearson"}


def hr_metrics(pred: np.ndarray, ref: np.ndarray, *, subjects: np.ndarray | None = None, records: np.ndarray | None = None,
               n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """All HR metrics: ``mae_bpm``, ``mae_bpm_se``, ``mae_bpm_ci_lo``, ``mae_bpm_ci_hi``, ... and ``n``.

    ``*_se`` are window-level standard errors (they treat the windows of one subject as independent,
    so they are too small; kept for comparison with published tables). The CIs are **subject-level**
    bootstrap CIs from :mod:`benchmark.stats` (windows → record → subject), computed when ``subjects``
    is given, ≥ 2 subjects are present and ``n_boot > 0``; NaN otherwise. ``n_subjects`` counts them.

    >>> out = hr_metrics(np.array([70.0, 80, 90, 100]), np.array([72.0, 80, 85, 100]), subjects=np.array(["a", "a", "b", "b"]), n_boot=199)
    >>> out["mae_bpm"], out["n_subjects"], out["mae_bpm_ci_lo"] <= out["mae_bpm"] <= out["mae_bpm_ci_hi"]
    (1.75, 2.0, True)
    """
    from benchmark import stats

    pred, ref = _check(pred, ref)
    ses = standard_errors(pred, ref)
    out: dict[str, float] = {"n": float(len(pred))}
    for key, fn in METRICS.items():
        name = METRIC_NAMES[key]
        out[name] = fn(pred, ref)
        out[f"{name}_se"] = ses[key]
        if name in stats.METRICS:
            out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = float("nan"), float("nan")
    if subjects is not None:
        subjects = np.asarray(subjects).astype(str)
        if subjects.shape != pred.shape:
            raise ValueError(f"subjects has shape {subjects.shape}, expected {pred.shape}")
        recs = np.asarray(records).astype(str) if records is not None else subjects
        table = stats.subject_table(pd.DataFrame({"subject": subjects, "record": recs, "hr_pred": pred, "hr_ref": ref}))
        out["n_subjects"] = float(len(table))
        if len(table) >= 2 and n_boot > 0:
            for metric, (col, _) in stats.METRICS.items():
                _, lo, hi = stats.metric_ci(table[col].to_numpy(), metric, n_boot=n_boot, seed=seed)
                out[f"{metric}_ci_lo"], out[f"{metric}_ci_hi"] = lo, hi
    return out
