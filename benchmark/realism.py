"""``rppg-bench realism``: does the synthetic world rank the classic methods as real data does?

Runs the seven classic methods (GREEN, ICA, CHROM, LGI, PBV, POS, OMIT — found through the registry)
on each dataset-like tier of the v3 world (:mod:`protocols.synthetic.tiers`), through the normal
preprocessing (face box of frame 0 ×1.5, 72×72, cached) and evaluation chain, and compares with the
published real-data MAEs of the matching dataset (``benchmark/data/published_unsupervised_mae.csv``:
rPPG-Toolbox, NeurIPS 2023, Table 2). As in that table, HR is one value per record (whole-video
spectrum, ``eval.window_s = None``); the reference is the finger-PPG label's HR, and the MAE against
the generator's *true* HR (from its beat times) is reported beside it.

Written: ``results/realism.csv`` (tier, method, mae_bpm with its subject-bootstrap CI, mae_true_bpm,
published_dataset, published_mae_bpm, ratio) and ``results/realism.md`` (per tier: our MAE beside the
published one, Spearman ρ over GREEN, ICA, CHROM, LGI, PBV, POS, the ratio ours/published for POS and
CHROM, GREEN's rank; then a sensitivity table: POS and GREEN MAE when one knob of a base tier changes).

The report is a *check* of the world's physics, never a target to tune knobs against.

    rppg-bench realism [size=quick|full] [tiers=ubfc_like,pure_like] [sensitivity=true|false] [workers=2] [cache_dir=cache]
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CLASSIC = ("green", "ica", "chrom", "lgi", "pbv", "pos", "omit")
RANKED = ("green", "ica", "chrom", "lgi", "pbv", "pos")
PUBLISHED = Path(__file__).with_name("data") / "published_unsupervised_mae.csv"
MATCH = {"ubfc_like": "UBFC-rPPG", "pure_like": "PURE", "mmpd_like": "MMPD"}

#: Records per tier (subjects × records per subject, seconds). PURE-like: every subject does the six
#: tasks; MMPD-like: four tasks per subject.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {"ubfc_like": {"n_subjects": 10, "records_per_subject": 1, "duration_s": 20.0},
              "pure_like": {"n_subjects": 3, "records_per_subject": 6, "duration_s": 20.0},
              "mmpd_like": {"n_subjects": 6, "records_per_subject": 4, "duration_s": 20.0}},
    "full": {"ubfc_like": {"n_subjects": 20, "records_per_subject": 1, "duration_s": 30.0},
             "pure_like": {"n_subjects": 6, "records_per_subject": 6, "duration_s": 30.0},
             "mmpd_like": {"n_subjects": 10, "records_per_subject": 4, "duration_s": 30.0}},
}

#: Sensitivity: one knob changed at a time on a base tier (6 subjects × 12 s each; the same subjects, seed 200).
SENSITIVITY: list[tuple[str, str, dict[str, Any]]] = [
    ("base (pure_like, still)", "pure_like", {"tasks": ["still"]}),
    ("motion: talking", "pure_like", {"tasks": ["talking"]}),
    ("motion: medium rotation", "pure_like", {"tasks": ["medium_rotation"]}),
    ("motion: walking", "pure_like", {"tasks": ["walking"]}),
    ("no BCG", "pure_like", {"tasks": ["still"], "bcg_um": 0.0}),
    ("no specular", "pure_like", {"tasks": ["still"], "specular": 0.0}),
    ("skin type V–VI", "pure_like", {"tasks": ["still"], "skin_type": [5.0, 6.0]}),
    ("dim (30–60 lux)", "pure_like", {"tasks": ["still"], "illuminance_lux": [30.0, 60.0]}),
    ("screen-lit dark room", "pure_like", {"tasks": ["still"], "lights": ["screen_dark"]}),
    ("fluorescent, flicker 0.5", "pure_like", {"tasks": ["still"], "lights": ["fluorescent"], "flicker_depth": 0.5}),
    ("light steps 6/min", "pure_like", {"tasks": ["still"], "light_steps_per_min": 6.0}),
    ("H.264 crf 28", "pure_like", {"tasks": ["still"], "codecs": ["h264"], "crf": 28.0}),
]


def published() -> pd.DataFrame:
    return pd.read_csv(PUBLISHED, comment="#")


def _evaluate(method_name: str, cached: Sequence[Any]) -> pd.DataFrame:
    """Per-record HR of one method (whole record) against the label and the true HR."""
    from benchmark.evaluate import EvalConfig, RecordSignal, evaluate_signals
    from benchmark.registry import create_method
    from protocols.synthetic.physio import window_true_hr

    method = create_method(method_name)
    signals = [RecordSignal(r.id, r.subject, r.dataset, r.fps, np.asarray(method.predict(r.frames, r.fps), np.float64), r.ppg)
               for r in cached]
    _, df = evaluate_signals(signals, EvalConfig(window_s=None, n_boot=0))
    true = {r.id: window_true_hr(np.asarray(r.meta["beat_times_s"]), 0.0, len(r) / r.fps) for r in cached}
    df["hr_true"] = df["record"].map(true)
    df["method"] = method_name
    return df


def _mae_ci(df: pd.DataFrame, ref: str = "hr_ref") -> tuple[float, float, float]:
    from benchmark.stats import bootstrap_ci

    err = (df["hr_pred"] - df[ref]).abs().groupby(df["subject"]).mean().to_numpy()
    if len(err) < 2:
        m = float(err.mean()) if len(err) else float("nan")
        return m, float("nan"), float("nan")
    return bootstrap_ci(err, n_boot=2000, seed=0)


def run_tier(tier: str, size: dict[str, Any], *, cache_dir: str, workers: int, seed: int = 100, **knobs: Any) -> pd.DataFrame:
    """Predictions of the classic methods on one tier (one row per record × method)."""
    from protocols.preprocess import PreprocessConfig, preprocess
    from protocols.synthetic import SyntheticDataset

    ds = SyntheticDataset(tier=tier, seed=seed, **size, **knobs)
    cached = list(preprocess(ds, PreprocessConfig(size=72), cache_dir, progress=False, workers=workers))
    return pd.concat([_evaluate(m, cached) for m in CLASSIC], ignore_index=True).assign(tier=tier)


def summarise(pred: pd.DataFrame) -> pd.DataFrame:
    """One row per tier × method: MAE vs label (with CI) and vs true HR, published MAE, ratio."""
    pub = published()
    rows = []
    for (tier, method), df in pred.groupby(["tier", "method"], sort=False):
        est, lo, hi = _mae_ci(df)
        dataset = MATCH.get(tier, "")
        p = pub[(pub["dataset"] == dataset) & (pub["method"] == method)]
        pmae = float(p["mae_bpm"].iloc[0]) if len(p) else float("nan")
        rows.append({"tier": tier, "method": method, "mae_bpm": round(est, 3), "mae_ci_lo": round(lo, 3), "mae_ci_hi": round(hi, 3),
                     "mae_true_bpm": round(float((df["hr_pred"] - df["hr_true"]).abs().mean()), 3),
                     "label_vs_true_bpm": round(float((df["hr_ref"] - df["hr_true"]).abs().mean()), 3),
                     "n_records": int(df["record"].nunique()), "n_subjects": int(df["subject"].nunique()),
                     "published_dataset": dataset, "published_mae_bpm": pmae,
                     "ratio": round(est / pmae, 3) if pmae == pmae and pmae > 0 else float("nan")})
    return pd.DataFrame(rows)


def checks(table: pd.DataFrame) -> pd.DataFrame:
    """Per tier: Spearman ρ (six methods), POS/CHROM ratios, GREEN's rank among the six."""
    from scipy.stats import spearmanr

    out = []
    for tier, df in table.groupby("tier", sort=False):
        six = df[df["method"].isin(RANKED)].set_index("method").loc[list(RANKED)]
        rho = float(spearmanr(six["mae_bpm"], six["published_mae_bpm"]).statistic) if six["published_mae_bpm"].notna().all() else float("nan")
        rank = six["mae_bpm"].rank(method="min")
        out.append({"tier": tier, "spearman_rho": round(rho, 3), "pos_ratio": float(six.loc["pos", "ratio"]),
                    "chrom_ratio": float(six.loc["chrom", "ratio"]), "green_rank_of_6": int(rank["green"])})
    return pd.DataFrame(out)


def _md_table(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    cols = list(df.columns)
    buf.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
    for _, r in df.iterrows():
        buf.write("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |\n")
    return buf.getvalue()


def write_report(table: pd.DataFrame, chk: pd.DataFrame, sens: pd.DataFrame | None, out_dir: str | Path, *, command: str, seconds: float) -> None:
    from benchmark.leaderboard import write_text_atomic  # the one atomic text writer for results/

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "realism.csv", table.to_csv(index=False))
    lines = ["# Realism of the synthetic world (v3 tiers)", "",
             f"Command: `{command}` ({seconds / 60:.1f} min). Whole-record HR (as the published table), reference = finger-PPG label;",
             "`mae_true_bpm` = against the generator's true HR (beat times). CI: 95 % subject-bootstrap. Published: rPPG-Toolbox",
             "(NeurIPS 2023) Table 2, real data (`benchmark/data/published_unsupervised_mae.csv`). This is a check of the",
             "world's physics, not a target: knobs are set from sources (docs/synthetic_world.md), not from this table.", ""]
    for tier, df in table.groupby("tier", sort=False):
        lines += [f"## {tier} (published: {df['published_dataset'].iloc[0] or '—'})", "",
                  _md_table(df[["method", "mae_bpm", "mae_ci_lo", "mae_ci_hi", "mae_true_bpm", "published_mae_bpm", "ratio"]])]
    lines += ["## Checks", "", "Acceptance targets: ρ ≥ 0.7 on two tiers and ≥ 0.4 on the third; POS and CHROM ratio in 0.5–2;",
              "GREEN 5th or 6th of the six.", "", _md_table(chk)]
    if sens is not None and len(sens):
        lines += ["## Sensitivity (one knob changed on a base tier)", "", _md_table(sens)]
    write_text_atomic(out / "realism.md", "\n".join(lines) + "\n")


def sensitivity(*, cache_dir: str, workers: int) -> pd.DataFrame:
    rows = []
    size = {"n_subjects": 6, "records_per_subject": 1, "duration_s": 12.0}
    for label, tier, knobs in SENSITIVITY:
        pred = run_tier(tier, size, cache_dir=cache_dir, workers=workers, seed=200, **knobs)
        row: dict[str, Any] = {"setting": label}
        for m in ("pos", "green"):
            d = pred[pred["method"] == m]
            row[f"{m}_mae_bpm"] = round(float((d["hr_pred"] - d["hr_ref"]).abs().mean()), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str]) -> int:
    """``rppg-bench realism`` entry point (``key=value`` arguments)."""
    from benchmark.registry import discover

    args = dict(a.split("=", 1) for a in argv)
    unknown = sorted(set(args) - {"size", "tiers", "sensitivity", "workers", "cache_dir", "out"})
    if unknown:
        raise SystemExit(f"realism: unknown argument(s) {', '.join(unknown)}; valid: size, tiers, sensitivity, workers, cache_dir, out")
    size = args.get("size", "quick")
    if size not in SIZES:
        raise SystemExit(f"realism: unknown size {size!r}; valid: {', '.join(SIZES)}")
    tiers = args.get("tiers", ",".join(MATCH)).split(",")
    bad = [t for t in tiers if t not in MATCH]
    if bad:
        raise SystemExit(f"realism: unknown tier(s) {', '.join(bad)}; valid: {', '.join(MATCH)}")
    discover()
    t0 = time.time()
    workers, cache = int(args.get("workers", 2)), args.get("cache_dir", "cache")
    pred = pd.concat([run_tier(t, SIZES[size][t], cache_dir=cache, workers=workers) for t in tiers], ignore_index=True)
    table = summarise(pred)
    chk = checks(table)
    sens = sensitivity(cache_dir=cache, workers=workers) if args.get("sensitivity", "true").lower() in ("1", "true", "yes") else None
    write_report(table, chk, sens, args.get("out", "results"), command="rppg-bench realism " + " ".join(argv), seconds=time.time() - t0)
    print(_md_table(table[["tier", "method", "mae_bpm", "mae_true_bpm", "published_mae_bpm", "ratio"]]))
    print(_md_table(chk))
    if sens is not None:
        print(_md_table(sens))
    print(f"written: {args.get('out', 'results')}/realism.md, realism.csv ({(time.time() - t0) / 60:.1f} min)")
    return 0


COMMANDS = {"realism": main}
