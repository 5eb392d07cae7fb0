"""Agreement and correlation: Bland–Altman (Lancet 1986; Stat Methods Med Res 1999; J Biopharm Stat
2007): bias ± 1.96·SD — *no* √2 widening (the rPPG-Toolbox's ``averaged=True`` widens by √2) — with
CIs on the bias and the limits, and the proportional-bias slope; Lin's CCC (Biometrics 1989);
repeated-measures correlation (Bakdash & Marusich, Front. Psychol. 2017, ``pingouin.rm_corr``);
Spearman's ρ.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from benchmark.stats.errors import StatsError, _need_subjects


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
