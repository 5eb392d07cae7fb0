"""The one statistics module: subject-level aggregation, bootstrap CIs, paired and rank tests, agreement.

Every CI, paired test, rank test and agreement figure of the suite comes from here (DESIGN.md,
"One statistics module"); the leaderboard, the report and the label-quality lab call these functions.

**Unit of analysis = subject.** Windows of one record, records of one subject and seeds of one
method are not independent; a window-level SE (``mae_bpm_se`` of a run) is too small by the design
effect. :func:`subject_table` averages window errors → record → subject; seeds are a second level,
*crossed* with subjects (every seed's model is scored on every subject), so a method's data is a
subjects × seeds matrix (:func:`error_matrix`).

**Bootstrap.** :func:`bootstrap_ci` resamples subjects and — when there are several — seeds, each
with replacement and independently of the other (the "pigeonhole" bootstrap for crossed random
effects, Owen, Ann. Appl. Stat. 2007; with one seed it is the ordinary cluster bootstrap over
subjects). ``scipy.stats.bootstrap`` resamples index samples, so only the statistic (the mean of the
resampled sub-matrix) is ours. The default interval is the *expanded percentile* (Hesterberg 2015):
BCa was measured to under-cover (91–92 % for a nominal 95 % with 40 subjects, :func:`calibrate`),
because a bootstrap interval of a mean is too narrow for small n; BCa stays available (``method``).

**Tests.** Declared pairs: Wilcoxon signed-rank on the per-subject (seed-averaged) error
differences (``scipy.stats.wilcoxon``), Holm-corrected over the declared family (``pingouin.multicomp``).
Many methods: Friedman over the subjects × methods matrix (``scipy.stats.friedmanchisquare``, tie
corrected) with Demšar's (JMLR 2006) uncorrected χ²_F and Iman–Davenport F_F beside it, and the
Nemenyi post-hoc (``scikit_posthocs.posthoc_nemenyi_friedman``) with its critical difference
CD = q_α·√(k(k+1)/(6N)), q_α = studentized range(α; k, ∞)/√2 (``scipy.stats.studentized_range``).

**Agreement.** Bland–Altman (Lancet 1986; Stat Methods Med Res 1999; J Biopharm Stat 2007): bias ±
1.96·SD — *no* √2 widening (the rPPG-Toolbox's ``averaged=True`` widens by √2) — with CIs on the bias
and the limits, and the proportional-bias slope; Lin's CCC (Biometrics 1989); repeated-measures
correlation (Bakdash & Marusich, Front. Psychol. 2017, ``pingouin.rm_corr``); Spearman's ρ.

Errors: fewer than 2 subjects, or methods/seeds scored on different subjects, raise
:class:`StatsError` / :class:`SubjectMismatchError` naming the runs and subjects — a comparison is
never silently made on unequal sets.

>>> import numpy as np
>>> est, lo, hi = bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), n_boot=999)
>>> est, bool(lo < est < hi)
(3.5, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Per-window error columns computed by :func:`subject_table` (all averaged window → record → subject).
ERROR_COLUMNS = ("abs_err", "sq_err", "ape", "err")
#: Metric → (error column, transform of the mean): RMSE is √(mean of per-subject MSE).
METRICS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray] | None]] = {
    "mae_bpm": ("abs_err", None),
    "rmse_bpm": ("sq_err", np.sqrt),
    "mape": ("ape", None),
}


class StatsError(ValueError):
    """A statistic cannot be computed on this input; the message says why."""


class SubjectMismatchError(StatsError):
    """Runs that are compared were scored on different subjects."""


# =============================================================================================
# windows → record → subject
# =============================================================================================
def subject_table(predictions: pd.DataFrame, keys: Sequence[str] = (), *, source: str = "predictions") -> pd.DataFrame:
    """Per-subject errors from per-window predictions (columns ``record``, ``subject``, ``hr_pred``,
    ``hr_ref``; optional ``dataset``), averaged window → record → subject.

    Returns one row per (``keys``..., subject) with ``abs_err`` (MAE, bpm), ``sq_err`` (MSE, bpm²),
    ``ape`` (MAPE, %), ``err`` (signed error, bpm), ``hr_ref``, ``hr_pred``, ``n_records``, ``n_windows``.
    Subjects are named ``dataset/subject`` so that equal ids of two datasets stay different people.
    Windows without a finite HR on both sides are dropped (a run counts them as ``n_windows_failed``).

    >>> p = pd.DataFrame({"record": ["r1", "r1", "r2", "r3"], "subject": ["a", "a", "a", "b"],
    ...                   "hr_pred": [70.0, 74.0, 60.0, 80.0], "hr_ref": [72.0, 72.0, 66.0, 80.0]})
    >>> subject_table(p)[["subject", "abs_err", "n_records", "n_windows"]].values.tolist()
    [['a', 4.0, 2, 3], ['b', 0.0, 1, 1]]
    """
    need = {"record", "subject", "hr_pred", "hr_ref", *keys}
    missing = sorted(need - set(predictions.columns))
    if missing:
        raise StatsError(f"{source}: missing column(s) {missing}; have {sorted(predictions.columns)}")
    df = predictions.copy()
    df = df[np.isfinite(df["hr_pred"].astype(float)) & np.isfinite(df["hr_ref"].astype(float))]
    if df.empty:
        raise StatsError(f"{source}: no window has a finite HR for both prediction and reference")
    subj = df["subject"].astype(str)
    if "dataset" in df.columns:
        ds = df["dataset"].fillna("").astype(str)
        subj = np.where(ds != "", ds + "/" + subj, subj)
    df["subject"] = subj
    e = df["hr_pred"].astype(float) - df["hr_ref"].astype(float)
    df["err"] = e
    df["abs_err"] = e.abs()
    df["sq_err"] = e**2
    df["ape"] = 100.0 * e.abs() / df["hr_ref"].astype(float).abs()
    cols = [*ERROR_COLUMNS, "hr_ref", "hr_pred"]
    rec = df.groupby([*keys, "subject", "record"], sort=True)
    per_rec = rec[cols].mean()
    per_rec["n_windows"] = rec.size()
    per_rec = per_rec.reset_index()
    sub = per_rec.groupby([*keys, "subject"], sort=True)
    out = sub[cols].mean()
    out["n_records"] = sub.size()
    out["n_windows"] = sub["n_windows"].sum()
    return out.reset_index()


def error_matrix(table: pd.DataFrame, value: str = "abs_err", *, seed_col: str = "seed", run_col: str | None = "run_id",
                 name: str = "") -> pd.DataFrame:
    """Subjects × seeds matrix of one error column (rows sorted by subject, columns by seed).

    Raises :class:`SubjectMismatchError` when the seeds were scored on different subjects.

    >>> t = pd.DataFrame({"seed": [0, 0, 1, 1], "subject": ["a", "b", "a", "b"], "abs_err": [1.0, 2.0, 3.0, 4.0]})
    >>> error_matrix(t).values.tolist()
    [[1.0, 3.0], [2.0, 4.0]]
    """
    if seed_col not in table.columns:
        table = table.assign(**{seed_col: 0})
    m = table.pivot_table(index="subject", columns=seed_col, values=value, aggfunc="mean").sort_index()
    if m.isna().any().any():
        sets = {s: set(g["subject"]) for s, g in table.groupby(seed_col)}
        every = set.union(*sets.values())
        runs = {}
        if run_col and run_col in table.columns:
            runs = {s: sorted(set(g[run_col].astype(str))) for s, g in table.groupby(seed_col)}
        detail = "; ".join(f"seed {s}{' (run ' + ', '.join(runs[s]) + ')' if s in runs else ''} lacks {sorted(every - v)}"
                           for s, v in sets.items() if every - v)
        raise SubjectMismatchError(f"{name or 'runs'}: seeds were scored on different subjects: {detail}")
    return m


def check_same_subjects(matrices: Mapping[str, pd.DataFrame], runs: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The common, sorted subject list of several methods' matrices; raises
    :class:`SubjectMismatchError` naming each method (and its runs) and the subjects it lacks or adds.

    >>> a = pd.DataFrame({0: [1.0, 2.0]}, index=["s1", "s2"])
    >>> check_same_subjects({"x": a, "y": a})
    ['s1', 's2']
    """
    sets = {k: set(map(str, m.index)) for k, m in matrices.items()}
    if not sets:
        raise StatsError("no methods to compare")
    every = set.union(*sets.values())
    common = set.intersection(*sets.values())
    if every != common:
        parts = []
        for k, s in sets.items():
            if s != every:
                who = f"{k}" + (f" (runs {', '.join(map(str, runs[k]))})" if runs and k in runs else "")
                parts.append(f"{who} lacks {sorted(every - s)}")
        raise SubjectMismatchError("methods were scored on different subjects, so they cannot be compared: "
                                   + "; ".join(parts) + f"; subjects common to all: {sorted(common)}")
    return sorted(every)


# =============================================================================================
# bootstrap
# =============================================================================================
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


def expanded_level(level: float, n: int) -> float:
    """Confidence level of the *expanded percentile* bootstrap (Hesterberg, Am. Stat. 2015, §5.1): the
    percentile interval at level 1 − α' with z_{α'/2} = √(n/(n−1))·t_{α/2, n−1}, which removes the
    bootstrap's narrowness bias for small n (a percentile or BCa interval of a mean is too narrow by
    √((n−1)/n) and uses z instead of t). Measured by :func:`calibrate` (40 subjects, 1000 simulated
    experiments): BCa covers 91–92 %, the expanded percentile 94–95 %.

    >>> round(expanded_level(0.95, 40), 4)
    0.9595
    """
    from scipy import stats

    if n < 2:
        return level
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return float(1 - 2 * stats.norm.sf(math.sqrt(n / (n - 1)) * t))


def _index_bootstrap(sizes: Sequence[int], stat: Callable[..., np.ndarray], *, n_boot: int, level: float, method: str,
                     seed: int) -> Any:
    """``scipy.stats.bootstrap`` over independent index samples ``arange(size)`` (one per resampled
    level); a level of size 1 is held fixed (scipy needs ≥ 2 observations per sample)."""
    from scipy import stats

    free = [i for i, s in enumerate(sizes) if s > 1]
    if method == "expanded":
        level, method = expanded_level(level, sizes[0]), "percentile"

    def wrapped(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        it = iter(idx)
        return stat(*[next(it) if i in free else np.zeros(1, dtype=int) for i in range(len(sizes))])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on degenerate jackknife samples; the caller falls back
        return stats.bootstrap(tuple(np.arange(sizes[i]) for i in free), wrapped, paired=False, vectorized=True,
                               n_resamples=n_boot, confidence_level=level, method=method, rng=np.random.default_rng(seed))


def bootstrap_ci(values: Any, *, transform: Callable[[np.ndarray], np.ndarray] | None = None, level: float = 0.95,
                 n_boot: int = 2000, seed: int = 0, method: str = "expanded") -> tuple[float, float, float]:
    """(estimate, lo, hi) of ``transform(mean)`` of a subjects (× seeds) array, by the subject (and
    seed) bootstrap with ``scipy.stats.bootstrap``: ``method`` = ``expanded`` (default; percentile at
    :func:`expanded_level`), ``BCa`` or ``percentile``.

    ``values`` is 1-D (one value per subject) or 2-D (subjects × seeds; seeds resampled independently of
    subjects). A constant array gives a zero-width interval (BCa is undefined there).

    >>> est, lo, hi = bootstrap_ci([[1.0, 1.2], [2.0, 2.4], [3.0, 2.8], [4.0, 4.4]], n_boot=999)
    >>> round(est, 3), bool(lo < est < hi)
    (2.6, True)
    """
    m = _as_matrix(values)
    n_s, n_k = m.shape
    _need_subjects(n_s, "a bootstrap CI")
    f = transform or (lambda x: x)
    est = float(f(np.asarray(m.mean())))
    if np.ptp(m) == 0:
        return est, est, est

    def stat(si: np.ndarray, ki: np.ndarray) -> np.ndarray:
        return f(m[si[..., :, None], ki[..., None, :]].mean(axis=(-2, -1)))

    res = _index_bootstrap((n_s, n_k), stat, n_boot=n_boot, level=level, method=method, seed=seed)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)) and method.lower() != "percentile":
        return bootstrap_ci(values, transform=transform, level=level, n_boot=n_boot, seed=seed, method="percentile")
    return est, lo, hi


def metric_ci(matrix: pd.DataFrame | np.ndarray, metric: str, **kw: Any) -> tuple[float, float, float]:
    """Bootstrap CI of a named metric (``mae_bpm``, ``rmse_bpm``, ``mape``) from the matrix of its error
    column (``abs_err``, ``sq_err``, ``ape``): RMSE is √ of the mean squared error.

    >>> est, lo, hi = metric_ci([4.0, 9.0, 16.0, 1.0], "rmse_bpm", n_boot=999)
    >>> round(est, 3)
    2.739
    """
    if metric not in METRICS:
        raise StatsError(f"unknown metric {metric!r}; valid: {sorted(METRICS)}")
    return bootstrap_ci(np.asarray(matrix, dtype=np.float64), transform=METRICS[metric][1], **kw)


# =============================================================================================
# paired comparisons
# =============================================================================================
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


# =============================================================================================
# many methods: Friedman + Nemenyi
# =============================================================================================
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


# =============================================================================================
# agreement and correlation
# =============================================================================================
def bland_altman(pred: Any, ref: Any, subject: Any = None, *, level: float = 0.95) -> dict[str, float]:
    """Bland–Altman agreement of ``pred`` with ``ref`` (d = pred − ref, bpm).

    One pair per subject (``subject`` None or all distinct): bias = mean(d), SD = sd(d, ddof=1), limits
    bias ± z·SD (z = 1.96 for 95 %; no √2 widening), CI of the bias ± t·SD/√n and of each limit
    ± t·√(3·SD²/n) (Bland & Altman 1999, §2.2 — the approximate SE of a limit, as pingouin uses).
    Several pairs per subject: the SD is the Bland & Altman (2007, §5, true value varying) total SD,
    √(σ²_between + σ²_within) from the one-way ANOVA of d by subject, and the CIs use n = subjects
    (the independent units; conservative). Proportional bias: OLS slope of d on the pair mean
    (``scipy.stats.linregress``) with its p-value.

    >>> r = bland_altman([71.0, 80, 62, 95, 70], [70.0, 78, 63, 92, 70])
    >>> r["bias"], round(r["sd"], 4), round(r["loa_hi"], 4), round(r["loa_lo"], 4)
    (1.0, 1.5811, 4.099, -2.099)
    """
    from scipy import stats

    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise StatsError(f"pred and ref must be 1-D and equal length, got {p.shape} and {r.shape}")
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    d = p - r
    z = float(stats.norm.ppf(0.5 + level / 2))
    if subject is None:
        subj = np.arange(len(d))
    else:
        subj = np.asarray(subject)[ok]
    codes, counts = np.unique(subj, return_inverse=False, return_counts=True)
    n_sub = len(codes)
    _need_subjects(n_sub, "Bland–Altman limits")
    bias = float(d.mean())
    if counts.max() == 1:
        sd = float(d.std(ddof=1))
        method = "one pair per subject (Bland & Altman 1986/1999)"
    else:
        # Bland & Altman 2007 §5: one-way ANOVA of the differences by subject. Hand-written: no library
        # (pingouin, statsmodels) implements the repeated-measures limits of agreement.
        df = pd.DataFrame({"d": d, "s": subj})
        g = df.groupby("s")["d"]
        m_i = g.size().to_numpy(np.float64)
        n_tot = m_i.sum()
        ss_w = float(((df["d"] - g.transform("mean")) ** 2).sum())
        ss_b = float((m_i * (g.mean().to_numpy() - d.mean()) ** 2).sum())
        ms_w = ss_w / (n_tot - n_sub) if n_tot > n_sub else 0.0
        ms_b = ss_b / (n_sub - 1)
        divisor = (n_tot**2 - float((m_i**2).sum())) / ((n_sub - 1) * n_tot)
        var_b = max((ms_b - ms_w) / divisor, 0.0)
        sd = math.sqrt(var_b + ms_w)
        method = "repeated pairs per subject (Bland & Altman 2007)"
    t = float(stats.t.ppf(0.5 + level / 2, n_sub - 1))
    se_bias = sd / math.sqrt(n_sub)
    se_loa = math.sqrt(3.0 * sd**2 / n_sub)
    lo, hi = bias - z * sd, bias + z * sd
    mean_pair = (p + r) / 2
    if np.ptp(mean_pair) > 0 and len(d) > 2:
        lr = stats.linregress(mean_pair, d)
        slope, slope_p = float(lr.slope), float(lr.pvalue)
    else:
        slope, slope_p = float("nan"), float("nan")
    return {"n_pairs": float(len(d)), "n_subjects": float(n_sub), "bias": bias, "bias_ci_lo": bias - t * se_bias,
            "bias_ci_hi": bias + t * se_bias, "sd": sd, "loa_lo": lo, "loa_hi": hi, "loa_lo_ci_lo": lo - t * se_loa,
            "loa_lo_ci_hi": lo + t * se_loa, "loa_hi_ci_lo": hi - t * se_loa, "loa_hi_ci_hi": hi + t * se_loa,
            "slope": slope, "slope_p": slope_p, "method": method}  # type: ignore[dict-item]


def ccc(pred: Any, ref: Any) -> float:
    """Lin's (1989) concordance correlation coefficient 2·s_xy / (s_x² + s_y² + (x̄ − ȳ)²), population
    moments. Hand-written (three moments): scipy has no CCC and pingouin's is not public API.

    >>> ccc([1.0, 2, 3, 4], [1.0, 2, 3, 4]), round(ccc([1.0, 2, 3, 4], [2.0, 3, 4, 5]), 3)
    (1.0, 0.714)
    """
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(ref, dtype=np.float64)
    if x.shape != y.shape or len(x) < 2:
        raise StatsError(f"CCC needs two equal-length arrays of ≥ 2 values, got {x.shape} and {y.shape}")
    sxy = float(((x - x.mean()) * (y - y.mean())).mean())
    den = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return 2 * sxy / den if den > 0 else float("nan")


def spearman(pred: Any, ref: Any) -> tuple[float, float]:
    """(ρ, p) Spearman rank correlation (``scipy.stats.spearmanr``).

    >>> spearman([1.0, 2, 3, 4], [10.0, 20, 30, 45])[0]
    1.0
    """
    from scipy import stats

    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(ref, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def rm_corr(pred: Any, ref: Any, subject: Any) -> tuple[float, float, float]:
    """(r_rm, p, dof) repeated-measures correlation of predicted vs reference HR within subjects
    (Bakdash & Marusich 2017, ``pingouin.rm_corr``): unlike Pearson r over a wide HR range, it asks
    whether the prediction follows each subject's own HR changes. NaN when no subject has ≥ 2 windows
    or fewer than 3 subjects.

    >>> r, p, dof = rm_corr([60.0, 62, 70, 73, 80, 79], [60.0, 63, 70, 72, 80, 81], ["a", "a", "b", "b", "c", "c"])
    >>> round(r, 3), int(dof)
    (0.786, 2)
    """
    import pingouin as pg

    df = pd.DataFrame({"x": np.asarray(pred, np.float64), "y": np.asarray(ref, np.float64), "s": np.asarray(subject)})
    df = df[np.isfinite(df["x"]) & np.isfinite(df["y"])]
    counts = df.groupby("s").size()
    if (counts >= 2).sum() < 2 or df["s"].nunique() < 3:
        return float("nan"), float("nan"), float("nan")
    df = df[df["s"].isin(counts[counts >= 2].index)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pg.rm_corr(data=df, x="x", y="y", subject="s")
    return float(res["r"].iloc[0]), float(res["pval"].iloc[0]), float(res["dof"].iloc[0])


# =============================================================================================
# calibration by simulation
# =============================================================================================
def simulate_arms(n_subjects: int, effect: float, rng: np.random.Generator, *, records: int = 2, windows: int = 3,
                  scale_sd: float = 0.3) -> pd.DataFrame:
    """Per-window predictions of two arms ``A``/``B`` on the same subjects (for :func:`calibrate`).

    Each subject has its own error scale (log-normal, log-SD ``scale_sd``: 0.3 = moderately
    heterogeneous subjects, 0.6 = heavy-tailed) and bias; both arms draw window errors from that
    subject's distribution independently; arm B's absolute errors are larger by ``effect`` bpm.

    >>> df = simulate_arms(3, 0.0, np.random.default_rng(0))
    >>> sorted(df["arm"].unique()), len(df)
    (['A', 'B'], 36)
    """
    rows = []
    for s in range(n_subjects):
        scale = float(np.exp(rng.normal(0.5, scale_sd)))
        bias = float(rng.normal(0, 1.0))
        for r in range(records):
            hr = float(rng.uniform(55, 110))
            for arm, extra in (("A", 0.0), ("B", effect)):
                e = rng.normal(bias, scale, size=windows)
                e = np.sign(e) * (np.abs(e) + extra)
                for w in range(windows):
                    rows.append((arm, f"s{s}", f"s{s}_r{r}", w, hr + e[w], hr))
    return pd.DataFrame(rows, columns=["arm", "subject", "record", "window", "hr_pred", "hr_ref"])


def calibrate(n_sims: int = 1000, n_subjects: int = 40, *, effect_sd: float = 0.5, n_boot: int = 999, level: float = 0.95,
              alpha: float = 0.05, seed: int = 0, scale_sd: float = 0.3, method: str = "expanded") -> dict[str, float]:
    """Calibration of the subject-level machinery by simulation, through the same functions the
    leaderboard uses (:func:`subject_table` → :func:`paired_difference`):

    - null (both arms from one distribution): ``coverage`` = share of the bootstrap CIs of the mean
      paired MAE difference that contain 0; ``type1`` = share of Wilcoxon p < alpha;
    - alternative: arm B worse by ``effect_sd`` SD of the per-subject paired differences (the SD
      estimated from the null simulations): ``power`` = share of p < alpha; ``coverage_alt`` = share
      of CIs that contain the true difference (``effect_sd`` · SD).
    """
    rng = np.random.default_rng(seed)
    null_cover, null_rej, diffs = 0, 0, []
    for i in range(n_sims):
        t = subject_table(simulate_arms(n_subjects, 0.0, rng, scale_sd=scale_sd), keys=["arm"])
        a = t[t["arm"] == "A"].set_index("subject")["abs_err"]
        b = t[t["arm"] == "B"].set_index("subject")["abs_err"].loc[a.index]
        r = paired_difference(a.to_numpy(), b.to_numpy(), n_boot=n_boot, seed=i, level=level, method=method)
        null_cover += r["ci_lo"] <= 0.0 <= r["ci_hi"]
        null_rej += r["p"] < alpha
        diffs.append((a - b).to_numpy())
    sd = float(np.std(np.concatenate(diffs), ddof=1))
    delta = effect_sd * sd
    alt_rej, alt_cover = 0, 0
    for i in range(n_sims):
        t = subject_table(simulate_arms(n_subjects, delta, rng, scale_sd=scale_sd), keys=["arm"])
        a = t[t["arm"] == "A"].set_index("subject")["abs_err"]
        b = t[t["arm"] == "B"].set_index("subject")["abs_err"].loc[a.index]
        r = paired_difference(b.to_numpy(), a.to_numpy(), n_boot=n_boot, seed=n_sims + i, level=level, method=method)
        alt_rej += r["p"] < alpha
        alt_cover += r["ci_lo"] <= delta <= r["ci_hi"]
    return {"n_sims": float(n_sims), "n_subjects": float(n_subjects), "coverage": null_cover / n_sims,
            "type1": null_rej / n_sims, "sd_diff": sd, "effect_bpm": delta, "power": alt_rej / n_sims,
            "coverage_alt": alt_cover / n_sims}


def cmd_stats_selftest(argv: Sequence[str]) -> int:
    """``rppg-bench stats-selftest [n_sims=1000] [n_subjects=40] [effect_sd=0.5] [scale_sd=0.3] [method=expanded]
    [seed=0] [n_boot=999] [stress=true]``: calibration of the subject-bootstrap CI and the paired test by
    simulation; exit 1 if a figure misses its target (coverage 95 ± 2 %, type-I ≤ 5.5 %, power ≥ 0.8).
    ``stress=true`` adds the same figures for heavy-tailed subjects (scale_sd 0.6) and for BCa, for
    information."""
    import time

    opts: dict[str, Any] = {"n_sims": 1000, "n_subjects": 40, "effect_sd": 0.5, "scale_sd": 0.3, "method": "expanded", "seed": 0,
                            "n_boot": 999, "stress": False}
    for a in argv:
        k, sep, v = a.partition("=")
        if not sep or k not in opts:
            print(f"error: unknown argument {a!r}; valid: {', '.join(f'{k}=' for k in opts)}")
            return 2
        d = opts[k]
        opts[k] = (v.lower() in ("1", "true", "yes")) if isinstance(d, bool) else type(d)(float(v)) if isinstance(d, int) else \
            float(v) if isinstance(d, float) else v

    def one(scale_sd: float, method: str) -> dict[str, float]:
        return calibrate(int(opts["n_sims"]), int(opts["n_subjects"]), effect_sd=float(opts["effect_sd"]), n_boot=int(opts["n_boot"]),
                         seed=int(opts["seed"]), scale_sd=scale_sd, method=method)

    t0 = time.time()
    r = one(float(opts["scale_sd"]), str(opts["method"]))
    ok_cov = abs(r["coverage"] - 0.95) <= 0.02
    ok_t1 = r["type1"] <= 0.055
    ok_pow = r["power"] >= 0.8
    print(f"stats self-test: {int(r['n_sims'])} simulated experiments per setting, {int(r['n_subjects'])} subjects × 2 records × 3 windows, "
          f"subject log-scale SD {opts['scale_sd']}; {opts['method']} subject bootstrap ({int(opts['n_boot'])} resamples); "
          "two-sided Wilcoxon signed-rank at α = 0.05")
    print(f"  null: CI coverage of the true difference 0     {100 * r['coverage']:.1f} %  (target 95 ± 2)  {'ok' if ok_cov else 'FAIL'}")
    print(f"  null: paired-test rejections                   {100 * r['type1']:.1f} %  (target ≤ 5.5)   {'ok' if ok_t1 else 'FAIL'}")
    print(f"  effect {opts['effect_sd']} SD = {r['effect_bpm']:.2f} bpm (SD of paired subject differences {r['sd_diff']:.2f} bpm):")
    print(f"        power                                   {100 * r['power']:.1f} %  (target ≥ 80)    {'ok' if ok_pow else 'FAIL'}")
    print(f"        CI coverage of the true difference      {100 * r['coverage_alt']:.1f} %")
    if opts["stress"]:
        for scale_sd, method in ((0.6, str(opts["method"])), (float(opts["scale_sd"]), "BCa")):
            q = one(scale_sd, method)
            print(f"  for information: log-scale SD {scale_sd}, {method}: coverage {100 * q['coverage']:.1f} %, "
                  f"type-I {100 * q['type1']:.1f} %, power {100 * q['power']:.1f} %")
    print(f"  ({time.time() - t0:.0f} s)")
    return 0 if (ok_cov and ok_t1 and ok_pow) else 1


COMMANDS = {"stats-selftest": cmd_stats_selftest}

__all__ = [
    "COMMANDS", "StatsError", "SubjectMismatchError", "ERROR_COLUMNS", "METRICS", "subject_table", "error_matrix", "check_same_subjects",
    "bootstrap_ci", "metric_ci", "paired_difference", "holm", "compare_pairs", "nemenyi_cd", "FriedmanResult", "rank_groups",
    "friedman_nemenyi", "cd_diagram", "bland_altman", "ccc", "spearman", "rm_corr", "simulate_arms", "calibrate",
    "cmd_stats_selftest", "expanded_level",
]
