"""Paired comparisons of declared method pairs: Wilcoxon signed-rank on the per-subject
(seed-averaged) error differences (``scipy.stats.wilcoxon``) with a subject bootstrap CI of the mean
difference, Holm-corrected over the declared family (``pingouin.multicomp``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.stats.aggregate import check_same_subjects
from benchmark.stats.bootstrap import _index_bootstrap
from benchmark.stats.errors import SubjectMismatchError, _as_matrix, _need_subjects


def paired_difference(a: Any, b: Any, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0,
                      method: str = "expanded") -> dict[str, float]:
    """Paired comparison of two methods' per-subject errors ``a`` and ``b`` (same subjects in the same
    order; each 1-D or subjects × seeds). Difference = a − b (negative: a has the lower error).

    Returns ``n_subjects``, ``mean_a``, ``mean_b``, ``mean_diff`` with its bootstrap CI (subjects resampled;
    each method's seeds resampled independently — seeds of two methods are not paired), ``median_diff``,
    and the two-sided Wilcoxon signed-rank test of the seed-averaged per-subject differences
    (``statistic``, ``p``; zero differences dropped, Wilcoxon 1945). With n subjects the smallest
    possible exact p is 2/2ⁿ (0.125 for 4), reported as ``p_min``.

    >>> r = paired_difference([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 3.5, 3.5, 5.0, 6.5, 7.0], n_boot=999)
    >>> round(r["mean_diff"], 3), round(r["p"], 4), r["p_min"]
    (-1.083, 0.0312, 0.03125)
    """
    from scipy import stats

    ma, mb = _as_matrix(a), _as_matrix(b)
    if ma.shape[0] != mb.shape[0]:
        raise SubjectMismatchError(f"paired comparison needs the same subjects: {ma.shape[0]} vs {mb.shape[0]}")
    n = ma.shape[0]
    _need_subjects(n, "a paired comparison")
    d = ma.mean(axis=1) - mb.mean(axis=1)
    out = {"n_subjects": float(n), "n_seeds_a": float(ma.shape[1]), "n_seeds_b": float(mb.shape[1]),
           "mean_a": float(ma.mean()), "mean_b": float(mb.mean()), "mean_diff": float(ma.mean() - mb.mean()),
           "median_diff": float(np.median(d)), "p_min": float(2.0 / 2**n)}
    if np.ptp(d) == 0 and ma.shape[1] == 1 and mb.shape[1] == 1:
        out.update(ci_lo=out["mean_diff"], ci_hi=out["mean_diff"])
    else:
        def stat(si: np.ndarray, ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
            return (ma[si[..., :, None], ka[..., None, :]].mean(axis=(-2, -1))
                    - mb[si[..., :, None], kb[..., None, :]].mean(axis=(-2, -1)))

        res = _index_bootstrap((n, ma.shape[1], mb.shape[1]), stat, n_boot=n_boot, level=level, method=method, seed=seed)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = (float(v) for v in np.quantile(res.bootstrap_distribution, [(1 - level) / 2, (1 + level) / 2]))
        out.update(ci_lo=lo, ci_hi=hi)
    if np.all(d == 0):
        out.update(statistic=float("nan"), p=1.0)
    else:
        res_w = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        out.update(statistic=float(res_w.statistic), p=float(res_w.pvalue))
    return out


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (``pingouin.multicomp``); NaNs stay NaN.

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    import pingouin as pg

    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        _, adj = pg.multicomp(p[ok], method="holm")
        out[ok] = adj
    return out


def compare_pairs(matrices: Mapping[str, pd.DataFrame], pairs: Sequence[tuple[str, str]], *,
                  runs: Mapping[str, Sequence[str]] | None = None, alpha: float = 0.05, n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Declared pairs (a, b) → one row each: :func:`paired_difference` plus Holm-adjusted ``p_holm`` over
    the pairs that could be tested and ``significant`` (p_holm < alpha). Pairs whose methods are absent
    are skipped; methods scored on different subjects raise :class:`SubjectMismatchError`.

    >>> a = pd.DataFrame({0: [1.0, 2, 3, 4, 5, 6]}, index=list("abcdef"))
    >>> b = pd.DataFrame({0: [2.0, 3.5, 3.5, 5, 6.5, 7]}, index=list("abcdef"))
    >>> compare_pairs({"x": a, "y": b}, [("x", "y"), ("x", "z")], n_boot=999)[["a", "b", "p_holm"]].round(4).values.tolist()
    [['x', 'y', 0.0312]]
    """
    matrices = {k: m.set_axis(m.index.map(str), axis=0) for k, m in matrices.items()}
    rows = []
    for a, b in pairs:
        if a not in matrices or b not in matrices:
            continue
        subjects = check_same_subjects({a: matrices[a], b: matrices[b]}, runs)
        r = paired_difference(matrices[a].loc[subjects].to_numpy(), matrices[b].loc[subjects].to_numpy(), n_boot=n_boot, seed=seed)
        rows.append({"a": a, "b": b, **r})
    cols = ["a", "b", "n_subjects", "n_seeds_a", "n_seeds_b", "mean_a", "mean_b", "mean_diff", "ci_lo", "ci_hi",
            "median_diff", "statistic", "p", "p_min", "p_holm", "significant"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["p_holm"] = holm(df["p"].to_numpy())
    df["significant"] = df["p_holm"] < alpha
    return df[cols]
