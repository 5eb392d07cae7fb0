"""Leaderboard: subject-level statistics from the runs' predictions, rank tests, declared pairs, and
user runs that never silently replace the committed reference (issue 16.11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark import stats as S
from benchmark import tracking
from benchmark.leaderboard import build, collect_runs, load_predictions, write_leaderboard

SUBJECTS = [f"s{i}" for i in range(8)]


def _preds(err_scale: float, seed: int, subjects=SUBJECTS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in subjects:
        for r in range(2):
            for w in range(3):
                ref = 60.0 + 5 * int(s[1:]) + r
                rows.append({"record": f"{s}_r{r}", "window": w, "start": 0, "stop": 300, "hr_pred": ref + rng.normal(0, err_scale),
                             "hr_ref": ref, "snr_db": 5.0, "macc": 0.9, "pearson_wave": 0.9, "dataset": "synth", "subject": s})
    return pd.DataFrame(rows)


def _log(method, seed, chash, preds, *, protocol="p", kind="unsupervised", labels="clean", const_hr=70.0):
    e = preds["hr_pred"] - preds["hr_ref"]
    with tracking.start_run(f"{method}/{protocol}/seed{seed}", {"config_hash": chash, "method": method, "protocol": protocol,
                                                                "seed": str(seed), "kind": kind, "labels": labels}, {"seed": seed}):
        tracking.log_metrics({"test/mae_bpm": float(e.abs().mean()), "test/mae_bpm_se": 0.1, "test/rmse_bpm": float(np.sqrt((e**2).mean())),
                              "test/mape": 1.0, "test/pearson": 0.9, "test/snr_db": 3.0, "test/macc": 0.8,
                              "test/const_mae_bpm": float((preds["hr_ref"] - const_hr).abs().mean()), "test/const_hr_bpm": const_hr})
        tracking.log_dataframe(preds, "predictions.csv")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracking.setup(f"sqlite:///{tmp_path}/m.db", "lb", str(tmp_path / "art"))
    return tmp_path


def test_runs_dedup_and_subject_level_table(store, capsys):
    _log("pos", 0, "h0", _preds(1.0, 0))
    _log("pos", 1, "h1", _preds(9.0, 1))
    _log("pos", 1, "h1", _preds(1.0, 2))  # re-run of the same config: the newest counts, once
    _log("chrom", 0, "c0", _preds(2.0, 3))
    _log("green", 0, "g0", _preds(20.0, 4))
    _log("green", 0, "g0-new", _preds(6.0, 5))  # the same cell under a changed config: supersedes, not a 2nd seed
    runs = collect_runs("lb")
    assert len(runs) == 4
    preds = load_predictions(runs)
    lb = build(runs, preds, n_boot=499)
    t = lb.table.set_index("method")
    assert t.loc["pos", "n_seeds"] == 2 and t.loc["green", "n_seeds"] == 1
    assert (t["n_subjects"] == 8).all()
    # MAE = mean over seeds × subjects of subject MAE (windows → record → subject)
    pos = preds[preds["method"] == "pos"]
    sub = S.subject_table(pos, keys=["seed"])
    assert t.loc["pos", "mae_bpm"] == pytest.approx(sub["abs_err"].mean())
    assert t.loc["pos", "rmse_bpm"] == pytest.approx(np.sqrt(sub["sq_err"].mean()))
    assert t.loc["pos", "mae_ci_lo"] < t.loc["pos", "mae_bpm"] < t.loc["pos", "mae_ci_hi"]
    # floor: predicting 70 bpm, aggregated the same way
    floor = S.subject_table(pos.assign(hr_pred=70.0), keys=["seed"])["abs_err"].mean()
    assert t.loc["pos", "floor_mae_bpm"] == pytest.approx(floor)
    assert not t.loc["pos", "not_below_floor"] and t.loc["green", "mae_bpm"] > 0
    # Friedman over 3 methods × 8 subjects; pos is the best, green in a worse group
    f = lb.tests.iloc[0]
    assert f["n_methods"] == 3 and f["n_subjects"] == 8 and f["p"] < 0.05
    assert t.loc["pos", "rank_group"] == 1 and t.loc["green", "rank_group"] > 1
    assert list(lb.table["method"]) == ["pos", "chrom", "green"]  # sorted by MAE
    # the declared pair pos vs chrom with a Holm-corrected Wilcoxon test
    assert lb.pairs[["a", "b"]].values.tolist() == [["pos", "chrom"]]
    assert lb.pairs["p_holm"].iloc[0] == pytest.approx(lb.pairs["p"].iloc[0])  # a family of one
    # Bland–Altman with repeated windows per subject
    assert set(lb.bland_altman["method"]) == {"pos", "chrom", "green"}
    # written files and the MLflow record of the leaderboard (per-row metrics incl. Bland–Altman, tables, figures)
    import mlflow

    write_leaderboard(store / "results", "lb", n_boot=199)
    exp = mlflow.get_experiment_by_name("lb-leaderboard")
    rec = mlflow.search_runs([exp.experiment_id], output_format="list")[0]
    assert rec.data.metrics["lb/p/clean/pos/mae_bpm"] == pytest.approx(t.loc["pos", "mae_bpm"], rel=1e-6)
    assert "lb/p/clean/green/ba_loa_hi" in rec.data.metrics
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(rec.info.run_id)}
    assert {"leaderboard.local.md", "leaderboard_pairs.local.csv", "cd_p.png", "ba_p.png"} <= arts
    # beside the runs' artifacts (tracking.artifacts), not in ./mlruns of the working folder
    assert exp.artifact_location == (store / "art").resolve().as_uri() + "/lb-leaderboard"
    assert not (store / "mlruns").exists()
    # a store whose leaderboard experiment an older version created under ./mlruns: said, not silent
    mlflow.MlflowClient().rename_experiment(exp.experiment_id, "lb-leaderboard-old")
    mlflow.create_experiment("lb-leaderboard", artifact_location=(store / "mlruns").resolve().as_uri())
    capsys.readouterr()
    write_leaderboard(store / "results", "lb", n_boot=199)
    assert "note: the MLflow artifacts of experiment 'lb-leaderboard' go to " + (store / "mlruns").resolve().as_uri() in capsys.readouterr().out


def test_mismatched_subjects_are_reported_not_compared(store):
    _log("pos", 0, "h0", _preds(1.0, 0))
    _log("chrom", 0, "c0", _preds(2.0, 1, subjects=SUBJECTS[:6]))
    _log("green", 0, "g0", _preds(6.0, 2))
    runs = collect_runs("lb")
    lb = build(runs, load_predictions(runs), n_boot=199)
    chrom_run = runs.set_index("method").loc["chrom", "run_id"]
    note = " ".join(lb.notes)
    assert f"chrom (runs {chrom_run}) lacks ['synth/s6', 'synth/s7']" in note
    assert "Friedman not computed" in note and "declared pairs not tested" in note
    assert lb.tests["note"].iloc[0].startswith("not computed")
    assert lb.pairs.empty and lb.table["rank_group"].isna().all()
    # each row's own CI is still there, over its own subjects
    assert lb.table.set_index("method").loc["chrom", "n_subjects"] == 6


def test_user_runs_never_replace_the_committed_leaderboard(store):
    results = store / "results"
    results.mkdir()
    # the committed reference holds rows of a protocol this store never ran
    committed = pd.DataFrame({"method": ["deepphys"], "kind": ["neural"], "protocol": ["synthetic_intra"], "labels": ["clean"],
                              "n_subjects": [4], "n_seeds": [3], "mae_bpm": [0.03], "source": ["store"]})
    (results / "leaderboard.csv").write_text(committed.to_csv(index=False))
    (results / "leaderboard.md").write_text("committed md\n")
    for i, (m, sc) in enumerate((("pos", 1.0), ("chrom", 2.0), ("green", 6.0))):
        _log(m, 0, f"{m}0", _preds(sc, i), protocol="synthetic_cross")
    write_leaderboard(results, "lb", n_boot=199, log_mlflow=False)
    # a user's run: their own files; the reference is untouched
    assert (results / "leaderboard.md").read_text() == "committed md\n"
    assert pd.read_csv(results / "leaderboard.csv").equals(committed)
    local = pd.read_csv(results / "leaderboard.local.csv")
    assert set(local["protocol"]) == {"synthetic_cross"}
    assert (results / "figures" / "local" / "cd_synthetic_cross.png").stat().st_size > 1000
    assert "figures/local/cd_synthetic_cross.png" in (results / "leaderboard.local.md").read_text()
    # a developer publishes on purpose: regenerated rows + the committed rows the store did not produce
    lb = write_leaderboard(results, "lb", publish=True, n_boot=199, log_mlflow=False)
    pub = pd.read_csv(results / "leaderboard.csv")
    assert set(pub["protocol"]) == {"synthetic_cross", "synthetic_intra"}
    kept = pub[pub["protocol"] == "synthetic_intra"].iloc[0]
    assert kept["method"] == "deepphys" and kept["source"] == "kept" and kept["mae_bpm"] == 0.03
    assert any("kept 1 row" in n and "deepphys/synthetic_intra/clean" in n for n in lb.notes)
    md = (results / "leaderboard.md").read_text()
    assert "deepphys *(kept)*" in md and "## synthetic_intra" in md and "Friedman test over 3 methods × 8 subjects" in md
    assert (results / "figures" / "cd_synthetic_cross.png").exists() and (results / "figures" / "ba_synthetic_cross.png").exists()
    assert "\\textbf{" in (results / "leaderboard.tex").read_text()


def test_a_run_without_predictions_is_named_and_left_out(store):
    _log("pos", 0, "h0", _preds(1.0, 0))
    _log("chrom", 0, "c0", _preds(2.0, 1))
    with tracking.start_run("green/p/seed0", {"config_hash": "g0", "method": "green", "protocol": "p", "seed": "0",
                                              "kind": "unsupervised", "labels": "clean"}, {"seed": 0}):
        tracking.log_metrics({"test/mae_bpm": 5.0})  # an old run: metrics but no predictions.csv
    with pytest.raises(S.StatsError, match="predictions.csv"):
        load_predictions(collect_runs("lb"))
    lb = write_leaderboard(store / "results", "lb", n_boot=199, log_mlflow=False)
    assert set(lb.table["method"]) == {"pos", "chrom"}
    assert any(n.startswith("run left out") and "green/p/seed0" in n for n in lb.notes)
