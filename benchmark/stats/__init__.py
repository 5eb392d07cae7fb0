"""The one statistics package: subject-level aggregation, bootstrap CIs, paired and rank tests, agreement.

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

Modules: :mod:`~benchmark.stats.aggregate` (windows → record → subject, seeds),
:mod:`~benchmark.stats.bootstrap` (CIs), :mod:`~benchmark.stats.paired` (Wilcoxon, Holm),
:mod:`~benchmark.stats.ranks` (Friedman, Nemenyi, CD diagram), :mod:`~benchmark.stats.agreement`
(Bland–Altman, CCC, rm-corr, Spearman), :mod:`~benchmark.stats.selftest` (calibration by simulation,
``stats-selftest``); every public name is re-exported here (``from benchmark.stats import X``).

>>> import numpy as np
>>> est, lo, hi = bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), n_boot=999)
>>> est, bool(lo < est < hi)
(3.5, True)
"""

from __future__ import annotations

from benchmark.stats.aggregate import ERROR_COLUMNS, METRICS, check_same_subjects, error_matrix, subject_table
from benchmark.stats.agreement import bland_altman, ccc, rm_corr, spearman
from benchmark.stats.bootstrap import bootstrap_ci, expanded_level, metric_ci
from benchmark.stats.errors import StatsError, SubjectMismatchError
from benchmark.stats.paired import compare_pairs, holm, paired_difference
from benchmark.stats.ranks import FriedmanResult, cd_diagram, friedman_nemenyi, nemenyi_cd, rank_groups
from benchmark.stats.selftest import COMMANDS, calibrate, cmd_stats_selftest, simulate_arms

__all__ = [
    "COMMANDS", "StatsError", "SubjectMismatchError", "ERROR_COLUMNS", "METRICS", "subject_table", "error_matrix", "check_same_subjects",
    "bootstrap_ci", "metric_ci", "paired_difference", "holm", "compare_pairs", "nemenyi_cd", "FriedmanResult", "rank_groups",
    "friedman_nemenyi", "cd_diagram", "bland_altman", "ccc", "spearman", "rm_corr", "simulate_arms", "calibrate",
    "cmd_stats_selftest", "expanded_level",
]
