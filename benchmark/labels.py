"""Training-label transforms: the data pipeline's label hook.

A label transform maps a 1-D PPG label to a new one. It is registered by name with
:func:`register_label_transform` and configured as a list of ``{name: ..., **params}`` in the
``labels`` config group; :class:`benchmark.data.ChunkDataset` applies them to **training labels
only** (evaluation always uses the untouched reference PPG). Each transform declares its scope:

* ``"record"`` — applied once to the whole record's label before chunking (noise models,
  whole-video ``standardized`` / ``diff_normalized`` as the toolbox does);
* ``"chunk"`` — applied to each chunk's label (LQ-rPPG's per-chunk band-pass + z-score, quantizers).

Random transforms draw from the ``rng`` they are given; the data pipeline derives it from the run
seed and the record id, so the same seed gives the same noisy labels.

>>> import numpy as np
>>> t = create_label_transform("standardized")
>>> y = t(np.array([1.0, 2.0, 3.0]), 30.0, np.random.default_rng(0))
>>> [round(float(v), 3) for v in y]
[-1.225, 0.0, 1.225]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from benchmark import signal as sig


class LabelTransform:
    """Base class: ``__call__(label, fps, rng) -> label`` (same length)."""

    name: ClassVar[str] = "?"
    scope: ClassVar[str] = "record"
    #: True when the transform needs statistics of the training labels (see :meth:`fit`).
    needs_fit: ClassVar[bool] = False

    def __call__(self, label: np.ndarray, fps: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def fit(self, labels: Sequence[np.ndarray], fps: float | Sequence[float]) -> None:
        """Learn from the training split's labels (e.g. a Lloyd-Max codebook); ``fps`` is one rate
        or one per label. Default: nothing."""

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


_TRANSFORMS: dict[str, type[LabelTransform]] = {}


def register_label_transform(name: str) -> Callable[[type[LabelTransform]], type[LabelTransform]]:
    def deco(cls: type[LabelTransform]) -> type[LabelTransform]:
        cls.name = name
        _TRANSFORMS[name] = cls
        return cls

    return deco


def _discover() -> None:
    import importlib

    for mod in ("benchmark.label_noise", "lq_rppg.quantizer"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # only a missing optional module is tolerated
            if exc.name != mod:
                raise


def list_label_transforms(pattern: str = "*") -> list[str]:
    _discover()
    return sorted(n for n in _TRANSFORMS if fnmatch.fnmatch(n, pattern))


def create_label_transform(name: str, **params: Any) -> LabelTransform:
    _discover()
    if name not in _TRANSFORMS:
        raise KeyError(f"unknown label transform {name!r}; valid: {', '.join(sorted(_TRANSFORMS))}")
    return _TRANSFORMS[name](**params)


def build_label_pipeline(specs: Sequence[Any] | None) -> list[LabelTransform]:
    """``[{"name": "gaussian_noise", "severity": 2}, "standardized", ...]`` → transform objects."""
    out: list[LabelTransform] = []
    for spec in specs or []:
        if isinstance(spec, LabelTransform):
            out.append(spec)
        elif isinstance(spec, str):
            out.append(create_label_transform(spec))
        else:
            spec = dict(spec)
            name = spec.pop("name")
            out.append(create_label_transform(name, **spec))
    return out


@register_label_transform("raw")
class Raw(LabelTransform):
    def __call__(self, label, fps, rng):
        return np.asarray(label, dtype=np.float64)


@register_label_transform("standardized")
class Standardized(LabelTransform):
    """Whole-record z-score with population std (toolbox ``LABEL_TYPE: Standardized``)."""

    def __call__(self, label, fps, rng):
        x = np.asarray(label, dtype=np.float64)
        sd = x.std()
        return (x - x.mean()) / sd if sd > 0 else x - x.mean()


@register_label_transform("diff_normalized")
class DiffNormalized(LabelTransform):
    """First difference divided by its std, a trailing 0 appended (toolbox ``DiffNormalized``)."""

    def __call__(self, label, fps, rng):
        x = np.asarray(label, dtype=np.float64)
        d = np.diff(x)
        sd = d.std()
        d = d / sd if sd > 0 else d
        return np.concatenate([d, [0.0]])


@register_label_transform("bandpass")
class BandPass(LabelTransform):
    """Zero-phase Butterworth band-pass (default order 1, 0.75–2.5 Hz as LQ-rPPG)."""

    def __init__(self, low: float = 0.75, high: float = 2.5, order: int = 1, scope: str = "record"):
        self.low, self.high, self.order = float(low), float(high), int(order)
        self.scope = scope  # type: ignore[misc]

    def __call__(self, label, fps, rng):
        x = np.asarray(label, dtype=np.float64)
        if len(x) <= 9:
            raise ValueError(f"label of {len(x)} samples is too short to band-pass")
        return sig.bandpass(x, fps, (self.low, self.high), self.order)


@register_label_transform("zscore_chunk")
class ZScoreChunk(LabelTransform):
    """Per-chunk z-score (y − mean)/(std + 1e-6) with the unbiased std, as LQ-rPPG's test code."""

    scope = "chunk"

    def __call__(self, label, fps, rng):
        x = np.asarray(label, dtype=np.float64)
        sd = x.std(ddof=1) if len(x) > 1 else 0.0
        return (x - x.mean()) / (sd + 1e-6)
