"""Windows → record → subject aggregation; seeds as a second, crossed level (subjects × seeds matrices).

**Unit of analysis = subject.** Windows of one record, records of one subject and seeds of one
method are not independent; a window-level SE (``mae_bpm_se`` of a run) is too small by the design
effect. :func:`subject_table` averages window errors → record → subject; seeds are a second level,
*crossed* with subjects (every seed's model is scored on every subject), so a method's data is a
subjects × seeds matrix (:func:`error_matrix`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from benchmark.stats.errors import StatsError, SubjectMismatchError

#: Per-window error columns computed by :func:`subject_table` (all averaged window → record → subject).
ERROR_COLUMNS = ("abs_err", "sq_err", "ape", "err")
#: Metric → (error column, transform of the mean): RMSE is √(mean of per-subject MSE).
METRICS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray] | None]] = {
    "mae_bpm": ("abs_err", None),
    "rmse_bpm": ("sq_err", np.sqrt),
    "mape": ("ape", None),
}


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
