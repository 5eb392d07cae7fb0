"""Calibration of the subject-level machinery by simulation, and the ``stats-selftest`` command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.stats.aggregate import subject_table
from benchmark.stats.paired import paired_difference


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
