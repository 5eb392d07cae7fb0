"""HR metrics with standard errors and seeded bootstrap confidence intervals.

Each metric is a small public function on paired arrays of HR estimates (bpm); :func:`hr_metrics`
bundles them. Standard errors follow the usual definitions (the toolbox's RMSE "standard error" is
non-standard; ours is the delta-method SE of √MSE). CIs are percentile bootstraps over windows with
a seeded generator.

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


def bootstrap_ci(
    fn: Callable[[np.ndarray, np.ndarray], float],
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``fn(pred, ref)``, resampling pairs with a seeded generator."""
    pred, ref = _check(pred, ref)
    n = len(pred)
    if n < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    vals = np.array([fn(pred[i], ref[i]) for i in idx])
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mae": mae,
    "rmse": rmse,
    "mape": mape,
    "pearson": pearson_r,
}

#: Stable public names (DESIGN.md); ``test/`` is prefixed by the runner.
METRIC_NAMES = {"mae": "mae_bpm", "rmse": "rmse_bpm", "mape": "mape", "pearson": "pearson"}


def hr_metrics(pred: np.ndarray, ref: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """All HR metrics: ``mae_bpm``, ``mae_bpm_se``, ``mae_bpm_ci_lo``, ``mae_bpm_ci_hi``, ... and ``n``."""
    pred, ref = _check(pred, ref)
    ses = standard_errors(pred, ref)
    out: dict[str, float] = {"n": float(len(pred))}
    for key, fn in METRICS.items():
        name = METRIC_NAMES[key]
        out[name] = fn(pred, ref)
        out[f"{name}_se"] = ses[key]
        lo, hi = bootstrap_ci(fn, pred, ref, n_boot=n_boot, seed=seed)
        out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = lo, hi
    return out
