"""MLflow runs → leaderboard tables, rank tests, declared-pair tests and agreement figures.

Unit of analysis = subject (DESIGN.md, "One statistics module"): every run's per-window
predictions (the ``predictions.csv`` artifact) are averaged window → record → subject by
:mod:`benchmark.stats`; seeds are a second level. Per method × protocol × labels the table shows
MAE, RMSE, MAPE with subject(-and-seed) bootstrap 95 % CIs, ``n_subjects``, ``n_seeds``, the
constant-predictor floor (predicting the mean training HR, aggregated the same way) and a flag when
the MAE CI does not lie below it; per protocol a Friedman test over the methods × subjects matrix with
the Nemenyi critical difference (``rank_group`` 1 = not separable from the best, bold in md/LaTeX),
a CD diagram, declared pairs with Holm-corrected Wilcoxon tests, and Bland–Altman per method.

Re-runs count once: per (method, protocol, labels, seed) the newest FINISHED run wins.

Where it writes (issue 16.11 — user runs never silently replace the committed reference):
``rppg-bench leaderboard`` (and ``make bench``) writes ``results/leaderboard.local.*`` and
``results/figures/local/``; ``rppg-bench leaderboard publish=true`` regenerates the committed
``results/leaderboard.*`` and ``results/figures/``, *merging* with the committed rows: a row
(method, protocol, labels) or a protocol's tests that the store did not produce are kept from the
previous files and marked ``source = kept``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import stats as S

COLUMNS = [
    "method", "kind", "protocol", "labels", "n_subjects", "n_seeds",
    "mae_bpm", "mae_ci_lo", "mae_ci_hi", "rmse_bpm", "rmse_ci_lo", "rmse_ci_hi", "mape", "mape_ci_lo", "mape_ci_hi",
    "floor_mae_bpm", "not_below_floor", "mean_rank", "rank_group",
    "pearson", "ccc", "spearman", "rm_corr", "snr_db", "macc",
    "ba_bias", "ba_loa_lo", "ba_loa_hi", "ba_slope", "mae_window_se", "source",
]
TEST_COLUMNS = ["protocol", "labels", "test", "n_methods", "n_subjects", "statistic", "p", "chi2_demsar", "f_iman_davenport",
                "p_iman_davenport", "cd", "alpha", "note", "source"]
PAIR_COLUMNS = ["protocol", "labels", "a", "b", "n_subjects", "n_seeds_a", "n_seeds_b", "mean_a", "mean_b", "mean_diff", "ci_lo",
                "ci_hi", "median_diff", "statistic", "p", "p_min", "p_holm", "significant", "source"]
BA_COLUMNS = ["protocol", "labels", "method", "n_pairs", "n_subjects", "bias", "bias_ci_lo", "bias_ci_hi", "sd", "loa_lo", "loa_lo_ci_lo",
              "loa_lo_ci_hi", "loa_hi", "loa_hi_ci_lo", "loa_hi_ci_hi", "slope", "slope_p", "method_ba", "source"]
#: Declared method pairs (issue 11): LQ-rPPG vs RhythmMamba and vs every other neural baseline; POS vs CHROM.
CONTROL = "lq_rppg"
FIXED_PAIRS = [("lq_rppg", "rhythmmamba"), ("pos", "chrom")]
ALPHA = 0.05


def declared_pairs(methods: Sequence[str], kinds: dict[str, str]) -> list[tuple[str, str]]:
    """The declared family of a protocol: (lq_rppg, rhythmmamba), (lq_rppg, each other neural baseline —
    not its own ablation variants ``lq_rppg_*``), (pos, chrom); only pairs whose methods are present.

    >>> declared_pairs(["lq_rppg", "physnet", "lq_rppg_bits3", "pos", "chrom"], {"physnet": "neural", "lq_rppg_bits3": "neural"})
    [('lq_rppg', 'physnet'), ('pos', 'chrom')]
    """
    present = set(methods)
    pairs = [(CONTROL, "rhythmmamba")] if {CONTROL, "rhythmmamba"} <= present else []
    if CONTROL in present:
        pairs += [(CONTROL, m) for m in sorted(present) if kinds.get(m) == "neural" and m not in (CONTROL, "rhythmmamba")
                  and not m.startswith(CONTROL + "_")]
    return pairs + [p for p in FIXED_PAIRS if p[0] != CONTROL and set(p) <= present]


# =============================================================================================
# reading MLflow
# =============================================================================================
def collect_runs(exp_name: str = "rppg-bench") -> pd.DataFrame:
    """One row per (method, protocol, labels, seed): its newest finished evaluation run."""
    import mlflow

    exp = mlflow.get_experiment_by_name(exp_name)
    if exp is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], output_format="list", max_results=50000)
    rows = []
    seen = set()
    for r in runs:
        tags = r.data.tags
        h = tags.get("config_hash")
        cell = (tags.get("method"), tags.get("protocol"), tags.get("labels", "clean"), tags.get("seed"))
        if h is None or cell in seen or "test/mae_bpm" not in r.data.metrics:
            continue
        seen.add(cell)
        m = r.data.metrics
        rows.append({
            "method": tags.get("method"), "kind": tags.get("kind", ""), "protocol": tags.get("protocol"),
            "labels": tags.get("labels", "clean"), "seed": tags.get("seed"), "run_id": r.info.run_id,
            "mae_bpm": m.get("test/mae_bpm"), "mae_se": m.get("test/mae_bpm_se"), "rmse_bpm": m.get("test/rmse_bpm"),
            "mape": m.get("test/mape"), "pearson": m.get("test/pearson"), "snr_db": m.get("test/snr_db"),
            "macc": m.get("test/macc"), "const_mae_bpm": m.get("test/const_mae_bpm"), "const_hr_bpm": m.get("test/const_hr_bpm"),
        })
    return pd.DataFrame(rows)


def load_predictions(runs: pd.DataFrame, loader: Callable[[str], pd.DataFrame] | None = None,
                     failed: list[str] | None = None) -> pd.DataFrame:
    """Every run's per-window ``predictions.csv`` stacked with its (method, protocol, labels, seed, run_id).

    A run whose artifact cannot be read raises :class:`~benchmark.stats.StatsError`, or — when a list
    ``failed`` is given — is skipped and named there (run id, method, protocol, seed and why)."""
    if loader is None:
        loader = _download_predictions
    frames = []
    for _, r in runs.iterrows():
        try:
            p = loader(str(r["run_id"]))
        except S.StatsError as exc:
            if failed is None:
                raise
            failed.append(f"{r['method']}/{r['protocol']}/seed{r['seed']}: {exc}")
            continue
        for k in ("method", "protocol", "labels", "seed", "run_id"):
            p[k] = r[k]
        frames.append(p)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _download_predictions(run_id: str) -> pd.DataFrame:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="predictions.csv", dst_path=tmp)
        except Exception as exc:  # noqa: BLE001 - mlflow raises several types for a missing artifact
            raise S.StatsError(f"run {run_id}: cannot read its predictions.csv artifact ({exc}); re-run it or delete the run") from exc
        return pd.read_csv(path)


def collect_efficiency(exp_name: str = "rppg-bench-efficiency") -> pd.DataFrame:
    import mlflow

    exp = mlflow.get_experiment_by_name(exp_name)
    if exp is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], output_format="list", max_results=5000)
    rows, seen = [], set()
    for r in runs:
        key = (r.data.tags.get("method"), r.data.tags.get("device"))
        if key in seen or key[0] is None:
            continue
        seen.add(key)
        m = r.data.metrics
        rows.append({"method": key[0], "device": key[1], "params": m.get("eff/params"), "gmacs_per_clip": (m.get("eff/macs_per_clip") or float("nan")) / 1e9,
                     "clips_per_s": m.get("eff/throughput_clips_s")})
    return pd.DataFrame(rows)


# =============================================================================================
# statistics
# =============================================================================================
@dataclass
class Leaderboard:
    table: pd.DataFrame
    tests: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TEST_COLUMNS))
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))
    bland_altman: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BA_COLUMNS))
    friedman: dict[tuple[str, str], S.FriedmanResult] = field(default_factory=dict)
    windows: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)


def _floor_matrix(pred: pd.DataFrame, runs: pd.DataFrame) -> float:
    """Constant-predictor MAE aggregated like the methods' (window → record → subject, seeds): predict
    the run's mean training HR (``test/const_hr_bpm``). Falls back to the run's window-level
    ``test/const_mae_bpm`` for runs logged before ``const_hr_bpm`` existed."""
    c = runs["const_hr_bpm"].astype(float) if "const_hr_bpm" in runs else pd.Series(dtype=float)
    if len(c) and c.notna().all():
        consts = dict(zip(runs["run_id"], c))
        p = pred.assign(hr_pred=pred["run_id"].map(consts))
        t = S.subject_table(p, keys=["seed"])
        return float(S.error_matrix(t).to_numpy().mean())
    v = runs["const_mae_bpm"].astype(float) if "const_mae_bpm" in runs else pd.Series(dtype=float)
    return float(v.mean()) if len(v) and v.notna().any() else float("nan")


def build(runs: pd.DataFrame, predictions: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, alpha: float = ALPHA) -> Leaderboard:
    """All statistics of the leaderboard from the runs table and their stacked predictions."""
    if runs.empty:
        return Leaderboard(pd.DataFrame(columns=COLUMNS))
    keys = ["method", "protocol", "labels", "seed", "run_id"]
    subj = S.subject_table(predictions, keys=keys, source="predictions.csv of the runs")
    rows, ba_rows, notes = [], [], []
    mats: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    run_ids: dict[tuple[str, str], dict[str, list[str]]] = {}
    kinds: dict[str, str] = {}
    for (method, protocol, labels), g in runs.groupby(["method", "protocol", "labels"], sort=True):
        name = f"{method} on {protocol} ({labels} labels)"
        kinds[method] = str(g["kind"].iloc[0])
        t = subj[(subj["method"] == method) & (subj["protocol"] == protocol) & (subj["labels"] == labels)]
        row: dict[str, Any] = {"method": method, "kind": kinds[method], "protocol": protocol, "labels": labels,
                               "n_seeds": len(g), "source": "store"}
        try:
            mat = {c: S.error_matrix(t, c, name=name) for c in ("abs_err", "sq_err", "ape")}
        except S.SubjectMismatchError as exc:
            notes.append(str(exc))
            mat = None
        if mat is not None:
            row["n_subjects"] = len(mat["abs_err"])
            for metric, short in (("mae_bpm", "mae"), ("rmse_bpm", "rmse"), ("mape", "mape")):
                col = S.METRICS[metric][0]
                try:
                    est, lo, hi = S.metric_ci(mat[col], metric, n_boot=n_boot, seed=seed)
                except S.StatsError as exc:
                    f = S.METRICS[metric][1] or (lambda x: x)
                    est, lo, hi = float(f(np.asarray(mat[col].to_numpy().mean()))), float("nan"), float("nan")
                    if metric == "mae_bpm":
                        notes.append(f"{name}: no CI — {exc}")
                row[metric], row[f"{short}_ci_lo"], row[f"{short}_ci_hi"] = est, lo, hi
            mats.setdefault((protocol, labels), {})[method] = mat["abs_err"]
            run_ids.setdefault((protocol, labels), {})[method] = list(g["run_id"].astype(str))
        p = predictions[(predictions["method"] == method) & (predictions["protocol"] == protocol) & (predictions["labels"] == labels)]
        p = p[np.isfinite(p["hr_pred"]) & np.isfinite(p["hr_ref"])]
        sid = p["dataset"].astype(str) + "/" + p["subject"].astype(str) if "dataset" in p else p["subject"].astype(str)
        row["floor_mae_bpm"] = _floor_matrix(predictions[predictions["run_id"].isin(g["run_id"])], g)
        row["not_below_floor"] = bool(np.isfinite(row.get("mae_ci_hi", np.nan)) and row["mae_ci_hi"] >= row["floor_mae_bpm"]) \
            if np.isfinite(row["floor_mae_bpm"]) else False
        row["pearson"] = float(g["pearson"].astype(float).mean())
        row["snr_db"] = float(g["snr_db"].astype(float).mean())
        row["macc"] = float(g["macc"].astype(float).mean())
        row["mae_window_se"] = float(np.sqrt(np.nansum(g["mae_se"].astype(float) ** 2)) / len(g))
        if len(p) >= 2:
            row["ccc"] = S.ccc(p["hr_pred"].to_numpy(), p["hr_ref"].to_numpy())
            row["spearman"] = S.spearman(p["hr_pred"].to_numpy(), p["hr_ref"].to_numpy())[0]
            row["rm_corr"] = S.rm_corr(p["hr_pred"].to_numpy(), p["hr_ref"].to_numpy(), sid.to_numpy())[0]
            try:
                ba = S.bland_altman(p["hr_pred"].to_numpy(), p["hr_ref"].to_numpy(), subject=sid.to_numpy())
                row.update(ba_bias=ba["bias"], ba_loa_lo=ba["loa_lo"], ba_loa_hi=ba["loa_hi"], ba_slope=ba["slope"])
                ba_rows.append({"protocol": protocol, "labels": labels, "method": method, **{k: v for k, v in ba.items() if k != "method"},
                                "method_ba": ba["method"], "source": "store"})
            except S.StatsError as exc:
                notes.append(f"{name}: no Bland–Altman limits — {exc}")
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)

    tests, pairs, fried = [], [], {}
    for (protocol, labels), ms in sorted(mats.items()):
        base = {"protocol": protocol, "labels": labels, "alpha": alpha, "source": "store"}
        try:
            subjects = S.check_same_subjects(ms, run_ids[(protocol, labels)])
            M = pd.DataFrame({m: ms[m].loc[subjects].mean(axis=1) for m in sorted(ms)})
            fr = S.friedman_nemenyi(M, alpha=alpha)
            fried[(protocol, labels)] = fr
            tests.append({**base, "test": "Friedman + Nemenyi", "n_methods": len(ms), "n_subjects": fr.n_subjects, "statistic": fr.chi2,
                          "p": fr.p, "chi2_demsar": fr.chi2_demsar, "f_iman_davenport": fr.f_iman_davenport,
                          "p_iman_davenport": fr.p_iman_davenport, "cd": fr.cd, "note": ""})
            sel = (table["protocol"] == protocol) & (table["labels"] == labels)
            table.loc[sel, "mean_rank"] = table.loc[sel, "method"].map(fr.mean_ranks)
            table.loc[sel, "rank_group"] = table.loc[sel, "method"].map(fr.rank_group)
        except S.StatsError as exc:
            tests.append({**base, "test": "Friedman + Nemenyi", "n_methods": len(ms), "n_subjects": float("nan"), "note": f"not computed: {exc}"})
            notes.append(f"{protocol} ({labels}): Friedman not computed — {exc}")
        fam = declared_pairs(list(ms), kinds)
        if fam:
            try:
                df = S.compare_pairs(ms, fam, runs=run_ids[(protocol, labels)], alpha=alpha, n_boot=n_boot, seed=seed)
                for _, r in df.iterrows():
                    pairs.append({"protocol": protocol, "labels": labels, **r.to_dict(), "source": "store"})
            except S.StatsError as exc:
                notes.append(f"{protocol} ({labels}): declared pairs not tested — {exc}")
    table = table.sort_values(["protocol", "labels", "mae_bpm"]).reset_index(drop=True)
    return Leaderboard(table, pd.DataFrame(tests).reindex(columns=TEST_COLUMNS), pd.DataFrame(pairs).reindex(columns=PAIR_COLUMNS),
                       pd.DataFrame(ba_rows).reindex(columns=BA_COLUMNS), fried, predictions, notes)


# =============================================================================================
# merging with the committed reference (issue 16.11)
# =============================================================================================
def merge_kept(new: pd.DataFrame, old: pd.DataFrame, key: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``new`` plus the rows of ``old`` whose ``key`` the new table lacks (marked ``source = kept``).

    >>> new = pd.DataFrame({"protocol": ["a"], "method": ["pos"], "source": ["store"]})
    >>> old = pd.DataFrame({"protocol": ["a", "b"], "method": ["pos", "pos"], "source": ["store", "store"]})
    >>> merge_kept(new, old, ["protocol", "method"])[0]["source"].tolist()
    ['store', 'kept']
    """
    if old is None or old.empty or not set(key) <= set(old.columns):
        return new, old.iloc[0:0] if old is not None else pd.DataFrame()
    have = set(map(tuple, new[list(key)].astype(str).to_numpy())) if len(new) else set()
    mask = [tuple(r) not in have for r in old[list(key)].astype(str).to_numpy()]
    kept = old[mask].copy()
    kept["source"] = "kept"
    cols = list(new.columns) if len(new.columns) else list(old.columns)
    out = pd.concat([new, kept.reindex(columns=cols)], ignore_index=True) if len(kept) else new
    return out, kept


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() and path.stat().st_size > 0 else pd.DataFrame()


# =============================================================================================
# rendering
# =============================================================================================
def _fmt(v: object, nd: int = 2) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else ""
    if isinstance(v, (float, np.floating)):
        return "–" if not np.isfinite(v) else f"{v:.{nd}f}"
    return "–" if v is None else str(v)


def _ci(r: pd.Series, est: str, lo: str, hi: str, nd: int = 2) -> str:
    if not np.isfinite(r.get(lo, np.nan)):
        return _fmt(r[est], nd)
    return f"{_fmt(r[est], nd)} [{_fmt(r[lo], nd)}, {_fmt(r[hi], nd)}]"


HEADER = ("Unit of analysis: **subject** (window errors averaged → record → subject; seeds a second level). "
          "95 % CIs: expanded-percentile bootstrap (Hesterberg 2015) resampling subjects and, with several seeds, seeds "
          "(Owen's pigeonhole bootstrap for crossed subjects × seeds). "
          "MAE/RMSE in bpm, MAPE in %. `floor`: MAE of predicting the mean training HR, aggregated the same way; "
          "⚠ = the MAE CI does not lie below the floor. `rank`: mean Friedman rank over subjects; **bold** / `grp 1` = not "
          "separable from the best by the Nemenyi test (α = 0.05). r = Pearson over windows (uninformative when HRs span "
          "45–150 bpm), CCC = Lin's concordance, ρ = Spearman, r_rm = repeated-measures correlation within subjects, "
          "BA = Bland–Altman bias and 95 % limits of agreement (bias ± 1.96·SD, repeated-measures SD; no √2). "
          "Errors are against the HR of the reference PPG (`hr_ref`, the field's convention); where the data carries its "
          "true beat times (synthetic world v3 tiers) each run also logs `test/true_mae_bpm` and `predictions.csv` has `hr_true`.")


def to_markdown(lb: Leaderboard | pd.DataFrame, eff: pd.DataFrame | None = None, *, figures: str = "figures") -> str:
    """Leaderboard markdown: one section per protocol (and label setting) with the table, the Friedman
    test, the declared pairs and the figures."""
    if isinstance(lb, pd.DataFrame):
        lb = Leaderboard(lb)
    df = lb.table.copy()
    if eff is not None and not eff.empty:
        df = df.merge(eff[eff["device"] == "cpu"][["method", "params", "gmacs_per_clip"]], on="method", how="left")
    lines = ["# rppg-bench leaderboard", "", HEADER, "",
             "Generated by `rppg-bench leaderboard` from the MLflow runs; rows marked *(kept)* come from the previous committed file "
             "because the store that regenerated it did not hold them.", ""]
    for (protocol, labels), g in df.groupby(["protocol", "labels"], sort=True):
        title = protocol if labels == "clean" else f"{protocol} — {labels} labels"
        n_sub = sorted({int(v) for v in g["n_subjects"].dropna()})
        n_seed = sorted({int(v) for v in g["n_seeds"].dropna()})
        lines += [f"## {title}", "",
                  f"n_subjects = {', '.join(map(str, n_sub)) or '–'}; n_seeds = {', '.join(map(str, n_seed)) or '–'} per row; unit = subject.", ""]
        cols = ["method", "kind", "n_subj", "n_seeds", "MAE [95 % CI]", "RMSE [95 % CI]", "MAPE % [95 % CI]", "floor", "rank", "grp",
                "r", "CCC", "ρ", "r_rm", "BA bias [LoA]", "SNR dB", "MACC"]
        if "params" in g:
            cols += ["params", "GMACs"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for _, r in g.iterrows():
            best = r.get("rank_group") == 1
            name = f"**{r['method']}**" if best else str(r["method"])
            if r.get("source") == "kept":
                name += " *(kept)*"
            mae = _ci(r, "mae_bpm", "mae_ci_lo", "mae_ci_hi")
            cells = [name, str(r["kind"]), _fmt(r["n_subjects"], 0), _fmt(r["n_seeds"], 0), f"**{mae}**" if best else mae,
                     _ci(r, "rmse_bpm", "rmse_ci_lo", "rmse_ci_hi"), _ci(r, "mape", "mape_ci_lo", "mape_ci_hi"),
                     _fmt(r["floor_mae_bpm"]) + (" ⚠" if r.get("not_below_floor") in (True, "True", 1) else ""),
                     _fmt(r["mean_rank"]), _fmt(r["rank_group"], 0), _fmt(r["pearson"], 3), _fmt(r["ccc"], 3), _fmt(r["spearman"], 3),
                     _fmt(r["rm_corr"], 3), f"{_fmt(r['ba_bias'])} [{_fmt(r['ba_loa_lo'])}, {_fmt(r['ba_loa_hi'])}]",
                     _fmt(r["snr_db"]), _fmt(r["macc"], 3)]
            if "params" in g:
                p = r.get("params")
                cells += [f"{int(p):,}" if isinstance(p, (float, np.floating)) and np.isfinite(p) else "–", _fmt(r.get("gmacs_per_clip"))]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        t = lb.tests[(lb.tests["protocol"] == protocol) & (lb.tests["labels"] == labels)] if len(lb.tests) else lb.tests
        for _, r in t.iterrows():
            if isinstance(r.get("note"), str) and r["note"]:
                lines.append(f"Friedman test over methods × subjects: {r['note']}")
            else:
                lines.append(f"Friedman test over {int(r['n_methods'])} methods × {int(r['n_subjects'])} subjects (subject MAE, mean over seeds): "
                             f"χ²_F = {r['statistic']:.2f} (tie-corrected), p = {r['p']:.3g}; Iman–Davenport F = {r['f_iman_davenport']:.2f}, "
                             f"p = {r['p_iman_davenport']:.3g}. Nemenyi critical difference CD = {r['cd']:.2f} mean ranks (α = {r['alpha']}).")
            lines.append("")
        suffix = "" if labels == "clean" else f"_{labels}"
        if (protocol, labels) in lb.friedman or (len(t) and not t["note"].fillna("").astype(str).str.len().gt(0).any()):
            lines += [f"![critical-difference diagram]({figures}/cd_{protocol}{suffix}.png)", ""]
        pr = lb.pairs[(lb.pairs["protocol"] == protocol) & (lb.pairs["labels"] == labels)] if len(lb.pairs) else lb.pairs
        if len(pr):
            lines += ["Declared pairs (two-sided Wilcoxon signed-rank on per-subject MAE differences, Holm-corrected over this family; "
                      "difference = a − b in bpm with subject-bootstrap 95 % CI; `p_min` = smallest p possible with this many subjects):", "",
                      "| a | b | n_subj | MAE a | MAE b | a − b [95 % CI] | W | p | p_min | p (Holm) | significant |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            for _, r in pr.iterrows():
                lines.append(f"| {r['a']} | {r['b']} | {_fmt(r['n_subjects'], 0)} | {_fmt(r['mean_a'])} | {_fmt(r['mean_b'])} | "
                             f"{_fmt(r['mean_diff'])} [{_fmt(r['ci_lo'])}, {_fmt(r['ci_hi'])}] | {_fmt(r['statistic'], 1)} | {_fmt(r['p'], 3)} | "
                             f"{_fmt(r['p_min'], 3)} | {_fmt(r['p_holm'], 3)} | {'yes' if r['significant'] in (True, 'True', 1) else 'no'} |")
            lines.append("")
        if len(lb.bland_altman) and ((lb.bland_altman["protocol"] == protocol) & (lb.bland_altman["labels"] == labels)).any():
            lines += [f"Bland–Altman per method (windows coloured by subject; grey: 95 % CIs of the limits; all figures in "
                      f"`leaderboard_bland_altman*.csv`):", "", f"![Bland–Altman]({figures}/ba_{protocol}{suffix}.png)", ""]
    return "\n".join(lines)


def to_latex(lb: Leaderboard) -> str:
    """LaTeX table per protocol: MAE/RMSE/MAPE with CIs, floor, rank; best group in bold."""
    out = ["% Generated by rppg-bench leaderboard. Unit: subject; 95 % CIs: subject(-and-seed) expanded-percentile bootstrap; "
           "bold: not separable from the best (Friedman + Nemenyi, alpha = 0.05)."]
    for (protocol, labels), g in lb.table.groupby(["protocol", "labels"], sort=True):
        n_sub = ", ".join(str(int(v)) for v in sorted(set(g["n_subjects"].dropna())))
        n_seed = ", ".join(str(int(v)) for v in sorted(set(g["n_seeds"].dropna())))
        esc = lambda s: str(s).replace("_", r"\_")  # noqa: E731
        out += [r"\begin{table}[t]\centering\small",
                rf"\caption{{{esc(protocol)} ({esc(labels)} labels): HR error per subject (bpm; MAPE in \%), mean over {n_sub} subjects "
                rf"and {n_seed} seed(s), 95\,\% subject-bootstrap CIs; floor = constant predictor; bold = not separable from the "
                rf"best (Friedman + Nemenyi, $\alpha = 0.05$).}}",
                r"\begin{tabular}{lccccc}\toprule", r"Method & MAE & RMSE & MAPE & Floor & Rank \\ \midrule"]
        for _, r in g.iterrows():
            best = r.get("rank_group") == 1

            def cell(est: str, lo: str, hi: str) -> str:
                s = _ci(r, est, lo, hi).replace("–", "--")
                return rf"\textbf{{{s}}}" if best else s

            out.append(f"{esc(r['method'])}{'$^*$' if r.get('source') == 'kept' else ''} & {cell('mae_bpm', 'mae_ci_lo', 'mae_ci_hi')} & "
                       f"{cell('rmse_bpm', 'rmse_ci_lo', 'rmse_ci_hi')} & {cell('mape', 'mape_ci_lo', 'mape_ci_hi')} & "
                       f"{_fmt(r['floor_mae_bpm']).replace('–', '--')} & {_fmt(r['mean_rank']).replace('–', '--')} \\\\")
        out += [r"\bottomrule\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def ba_figure(lb: Leaderboard, protocol: str, labels: str, path: Path) -> Path | None:
    """Bland–Altman small multiples (one panel per method; subject-coloured windows, bias and limits)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ba = lb.bland_altman[(lb.bland_altman["protocol"] == protocol) & (lb.bland_altman["labels"] == labels)]
    if ba.empty or lb.windows.empty:
        return None
    methods = list(lb.table[(lb.table["protocol"] == protocol) & (lb.table["labels"] == labels)]["method"])
    methods = [m for m in methods if m in set(ba["method"])]
    n = len(methods)
    ncol = min(4, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    w = lb.windows
    for ax, m in zip(axes.ravel(), methods):
        p = w[(w["method"] == m) & (w["protocol"] == protocol) & (w["labels"] == labels)]
        p = p[np.isfinite(p["hr_pred"]) & np.isfinite(p["hr_ref"])]
        b = ba[ba["method"] == m].iloc[0]
        mean = (p["hr_pred"] + p["hr_ref"]) / 2
        ax.scatter(mean, p["hr_pred"] - p["hr_ref"], s=6, c=pd.factorize(p["subject"])[0], cmap="tab20", alpha=0.7)
        for y, ls in ((b["bias"], "-"), (b["loa_lo"], "--"), (b["loa_hi"], "--")):
            ax.axhline(y, color="k", ls=ls, lw=0.9)
        for lo, hi in ((b["loa_lo_ci_lo"], b["loa_lo_ci_hi"]), (b["loa_hi_ci_lo"], b["loa_hi_ci_hi"])):
            ax.axhspan(lo, hi, color="0.8", alpha=0.5, lw=0)
        ax.set_title(f"{m}: bias {b['bias']:.2f} [{b['loa_lo']:.1f}, {b['loa_hi']:.1f}]", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.supxlabel("mean of predicted and reference HR (bpm)", fontsize=8)
    fig.supylabel("predicted − reference (bpm)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a hidden temp file beside ``path``, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _log_mlflow(lb: Leaderboard, paths: Sequence[Path], exp_name: str) -> None:
    """One run per leaderboard build in ``<experiment>-leaderboard``: per-row metrics (``lb/<protocol>/<method>/...``)
    and the tables and figures as artifacts."""
    import mlflow

    from benchmark import tracking

    name = f"{exp_name}-leaderboard"
    exp_id = tracking.experiment_under(name, tracking.artifacts_root(exp_name))  # beside the runs' artifacts
    with mlflow.start_run(experiment_id=exp_id, run_name="leaderboard"):
        metrics = {}
        for _, r in lb.table[lb.table["source"] == "store"].iterrows():
            pre = f"lb/{r['protocol']}/{r['labels']}/{r['method']}/"
            for c in ("mae_bpm", "mae_ci_lo", "mae_ci_hi", "rmse_bpm", "mape", "n_subjects", "n_seeds", "mean_rank", "rank_group",
                      "ccc", "rm_corr", "ba_bias", "ba_loa_lo", "ba_loa_hi", "ba_slope"):
                v = r.get(c)
                if v is not None and isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v):
                    metrics[pre + c] = float(v)
        items = list(metrics.items())
        for i in range(0, len(items), 500):
            tracking.log_metrics(dict(items[i : i + 500]))
        for p in paths:
            if p.exists():
                mlflow.log_artifact(str(p))


def output_name(base: str, ext: str, publish: bool) -> str:
    """File name of a leaderboard output: the committed reference, or the user's ``.local`` copy.

    >>> output_name("leaderboard", "md", False), output_name("leaderboard_pairs", "csv", True)
    ('leaderboard.local.md', 'leaderboard_pairs.csv')
    """
    return f"{base}.{ext}" if publish else f"{base}.local.{ext}"


def write_leaderboard(out_dir: str | Path = "results", exp_name: str = "rppg-bench", *, publish: bool = False,
                      runs: pd.DataFrame | None = None, predictions: pd.DataFrame | None = None, n_boot: int = 2000,
                      log_mlflow: bool = True) -> Leaderboard:
    """Build the leaderboard from the store and write it.

    ``publish=False`` (default): ``<out>/leaderboard.local.{md,csv,tex}`` (+ ``_tests``, ``_pairs``,
    ``_bland_altman`` CSVs) and figures under ``<out>/figures/local/`` — the committed reference files
    are not touched. ``publish=True``: the committed ``<out>/leaderboard.*`` and ``<out>/figures/``,
    merged with their previous rows (:func:`merge_kept`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(exp_name) if runs is None else runs
    failed: list[str] = []
    if predictions is None:
        predictions = load_predictions(runs, failed=failed) if len(runs) else pd.DataFrame()
        if failed:
            runs = runs[runs["run_id"].isin(set(predictions["run_id"]))] if len(predictions) else runs.iloc[0:0]
    lb = build(runs, predictions, n_boot=n_boot)
    lb.notes[:0] = [f"run left out, its predictions cannot be read — {f}" for f in failed]
    fig_dir = out_dir / "figures" if publish else out_dir / "figures" / "local"
    fig_rel = "figures" if publish else "figures/local"
    files = {k: out_dir / output_name(base, "csv", publish) for k, base in
             (("table", "leaderboard"), ("tests", "leaderboard_tests"), ("pairs", "leaderboard_pairs"), ("ba", "leaderboard_bland_altman"))}
    if publish:
        lb.table, kept = merge_kept(lb.table, _read_csv(files["table"]), ["method", "protocol", "labels"])
        if len(kept):
            lb.notes.append(f"kept {len(kept)} row(s) of the previous {files['table'].name} that this store did not produce: "
                            + ", ".join(sorted(f"{m}/{p}/{lab}" for m, p, lab in kept[["method", "protocol", "labels"]].astype(str).to_numpy())))
        lb.tests, _ = merge_kept(lb.tests, _read_csv(files["tests"]), ["protocol", "labels"])
        lb.pairs, _ = merge_kept(lb.pairs, _read_csv(files["pairs"]), ["protocol", "labels", "a", "b"])
        lb.bland_altman, _ = merge_kept(lb.bland_altman, _read_csv(files["ba"]), ["protocol", "labels", "method"])
        lb.table = lb.table.sort_values(["protocol", "labels", "mae_bpm"]).reset_index(drop=True)
    figs = []
    for (protocol, labels), fr in lb.friedman.items():
        suffix = "" if labels == "clean" else f"_{labels}"
        figs.append(S.cd_diagram(fr, fig_dir / f"cd_{protocol}{suffix}.png",
                                 title=f"{protocol}: mean rank of subject MAE (Nemenyi CD = {fr.cd:.2f}, α = {fr.alpha}, N = {fr.n_subjects})"))
        f = ba_figure(lb, protocol, labels, fig_dir / f"ba_{protocol}{suffix}.png")
        if f is not None:
            figs.append(f)
    eff = collect_efficiency() if log_mlflow else pd.DataFrame()
    write_text_atomic(files["table"], lb.table.to_csv(index=False))
    write_text_atomic(files["tests"], lb.tests.to_csv(index=False))
    write_text_atomic(files["pairs"], lb.pairs.to_csv(index=False))
    write_text_atomic(files["ba"], lb.bland_altman.to_csv(index=False))
    md, tex = out_dir / output_name("leaderboard", "md", publish), out_dir / output_name("leaderboard", "tex", publish)
    write_text_atomic(md, to_markdown(lb, eff, figures=fig_rel))
    write_text_atomic(tex, to_latex(lb))
    if log_mlflow and len(runs):
        _log_mlflow(lb, [*files.values(), md, tex, *figs], exp_name)
    return lb


def cmd_leaderboard(argv: Sequence[str]) -> int:
    """``rppg-bench leaderboard [publish=true] [n_boot=2000] [tracking.*=...]``: MLflow runs → the user's
    ``results/leaderboard.local.*``; ``publish=true`` regenerates the committed ``results/leaderboard.*``
    (merged with their rows this store did not produce)."""
    from benchmark import tracking
    from benchmark.cli import compose

    publish, n_boot, rest = False, 2000, []
    for a in argv:
        k, _, v = a.partition("=")
        if k == "publish":
            if v.lower() not in ("true", "false", "1", "0", "yes", "no"):
                print(f"error: publish={v!r}: expected true or false")
                return 2
            publish = v.lower() in ("true", "1", "yes")
        elif k == "n_boot":
            n_boot = int(v)
        else:
            rest.append(a)
    cfg = compose(rest, method=False)
    tracking.setup(cfg.tracking.uri, cfg.tracking.experiment, cfg.tracking.artifacts)
    lb = write_leaderboard("results", cfg.tracking.experiment, publish=publish, n_boot=n_boot)
    print(to_markdown(lb, figures="figures" if publish else "figures/local"))
    for n in lb.notes:
        print(f"note: {n}")
    names = ", ".join(output_name(b, e, publish) for b, e in (("leaderboard", "md"), ("leaderboard", "csv"), ("leaderboard", "tex"),
                                                              ("leaderboard_tests", "csv"), ("leaderboard_pairs", "csv"),
                                                              ("leaderboard_bland_altman", "csv")))
    print(f"written: results/{{{names}}} and figures under results/{'figures' if publish else 'figures/local'}/")
    if not publish:
        print("(the committed reference results/leaderboard.* is unchanged; `rppg-bench leaderboard publish=true` regenerates it)")
    return 0
