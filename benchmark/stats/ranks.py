"""Many methods: Friedman over the subjects × methods matrix (``scipy.stats.friedmanchisquare``, tie
corrected) with Demšar's (JMLR 2006) uncorrected χ²_F and Iman–Davenport F_F beside it, the Nemenyi
post-hoc (``scikit_posthocs.posthoc_nemenyi_friedman``) with its critical difference
CD = q_α·√(k(k+1)/(6N)), q_α = studentized range(α; k, ∞)/√2 (``scipy.stats.studentized_range``), rank
groups and the critical-difference diagram.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.stats.errors import StatsError, _need_subjects


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """(q_α, CD) of the Nemenyi test for k methods over n blocks (Demšar 2006, §3.2.2).

    >>> q, cd = nemenyi_cd(4, 14)
    >>> round(q, 3), round(cd, 2)
    (2.569, 1.25)
    """
    from scipy import stats

    if k < 2 or n < 1:
        raise StatsError(f"Nemenyi needs ≥ 2 methods and ≥ 1 subject, got k={k}, n={n}")
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))
    return q, q * math.sqrt(k * (k + 1) / (6.0 * n))


@dataclass
class FriedmanResult:
    """Friedman test + Nemenyi post-hoc over a subjects × methods matrix (lower value = better)."""

    methods: list[str]
    n_subjects: int
    mean_ranks: pd.Series
    chi2: float  # tie-corrected (scipy)
    p: float
    chi2_demsar: float  # Demšar 2006 eq. without tie correction
    f_iman_davenport: float
    p_iman_davenport: float
    alpha: float
    q_alpha: float
    cd: float
    nemenyi_p: pd.DataFrame
    rank_group: pd.Series = field(default_factory=pd.Series)

    def tied_with_best(self) -> list[str]:
        return [m for m in self.methods if self.rank_group[m] == 1]


def rank_groups(mean_ranks: pd.Series, cd: float) -> pd.Series:
    """Rank groups from mean ranks: group 1 = the best method and every method within CD of it (not
    separable from the best); group g+1 starts at the best method outside groups ≤ g. Hand-written: a
    greedy reading of the CD diagram, not a library routine.

    >>> rank_groups(pd.Series({"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2}), cd=1.0).tolist()
    [1, 1, 2, 2]
    """
    r = mean_ranks.sort_values()
    group = pd.Series(0, index=r.index, dtype=int)
    g = 0
    for name, val in r.items():
        if group[name]:
            continue
        g += 1
        for other, v2 in r.items():
            if not group[other] and v2 - val < cd:
                group[other] = g
    return group.reindex(mean_ranks.index)


def friedman_nemenyi(matrix: pd.DataFrame, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test over ``matrix`` (rows = subjects, columns = methods; lower = better, e.g. subject
    MAE) and the Nemenyi post-hoc. Needs ≥ 3 methods (use :func:`paired_difference` for 2) and ≥ 2
    subjects.

    >>> m = pd.DataFrame({"a": [1.0, 1, 1, 1], "b": [2.0, 2, 3, 2], "c": [3.0, 3, 2, 3]})
    >>> r = friedman_nemenyi(m)
    >>> r.mean_ranks.tolist(), round(r.chi2_demsar, 2), round(r.cd, 3)
    ([1.0, 2.25, 2.75], 6.5, 1.657)
    """
    from scipy import stats

    m = matrix.astype(float)
    if m.isna().any().any():
        raise StatsError("Friedman: the subjects × methods matrix has missing cells "
                         f"(methods {[c for c in m.columns if m[c].isna().any()]}); every method must be scored on every subject")
    n, k = m.shape
    _need_subjects(n, "the Friedman test")
    if k < 3:
        raise StatsError(f"the Friedman test needs ≥ 3 methods, got {k}; compare two with paired_difference")
    ranks = m.rank(axis=1, method="average")
    R = ranks.mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chi2, p = stats.friedmanchisquare(*[m[c].to_numpy() for c in m.columns])
    chi2_d = 12.0 * n / (k * (k + 1)) * (float((R**2).sum()) - k * (k + 1) ** 2 / 4.0)
    den = n * (k - 1) - chi2_d
    f_id = (n - 1) * chi2_d / den if den > 0 else float("inf")
    p_id = float(stats.f.sf(f_id, k - 1, (k - 1) * (n - 1))) if math.isfinite(f_id) else 0.0
    q, cd = nemenyi_cd(k, n, alpha)
    import scikit_posthocs as sp

    nem = sp.posthoc_nemenyi_friedman(m.to_numpy())
    nem.index = nem.columns = list(m.columns)
    res = FriedmanResult(list(m.columns), n, R, float(chi2) if np.isfinite(chi2) else 0.0, float(p) if np.isfinite(p) else 1.0,
                         chi2_d, f_id, p_id, alpha, q, cd, nem)
    res.rank_group = rank_groups(R, cd)
    return res


def cd_diagram(result: FriedmanResult, path: str | Path, title: str = "") -> Path:
    """Critical-difference diagram (``scikit_posthocs.critical_difference_diagram``): methods on the
    mean-rank axis, bars join methods whose Nemenyi p ≥ α. Written atomically as PNG.

    >>> import tempfile, os
    >>> r = friedman_nemenyi(pd.DataFrame({"a": [1.0, 1, 1], "b": [2.0, 3, 2], "c": [3.0, 2, 3]}))
    >>> p = cd_diagram(r, os.path.join(tempfile.mkdtemp(), "cd.png"))
    >>> p.stat().st_size > 1000
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(result.methods) + 1.6))
    sp.critical_difference_diagram(result.mean_ranks, result.nemenyi_p, ax=ax, alpha=result.alpha)
    ax.set_title(title or f"Nemenyi CD = {result.cd:.2f} (α = {result.alpha}, N = {result.n_subjects} subjects)", fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    tmp.replace(path)
    return path
