"""Leaderboard: seeds aggregated, re-runs of one config counted once, files written."""

from __future__ import annotations

import pandas as pd

from benchmark import tracking
from benchmark.leaderboard import aggregate, collect_runs, write_leaderboard


def _log(method, seed, mae, chash, labels="clean"):
    with tracking.start_run(f"{method}/p/seed{seed}", {"config_hash": chash, "method": method, "protocol": "p", "seed": str(seed),
                                                       "kind": "unsupervised", "labels": labels}, {"seed": seed}):
        tracking.log_metrics({"test/mae_bpm": mae, "test/mae_bpm_se": 0.5, "test/rmse_bpm": mae + 1, "test/mape": 1.0,
                              "test/pearson": 0.9, "test/snr_db": 3.0, "test/macc": 0.8})


def test_leaderboard_aggregates_seeds_and_dedups_reruns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracking.setup(f"sqlite:///{tmp_path}/m.db", "lb", str(tmp_path / "art"))
    _log("pos", 0, 2.0, "h0")
    _log("pos", 1, 4.0, "h1")
    _log("pos", 1, 6.0, "h1")  # re-run of the same config: the newest counts, once
    _log("green", 0, 9.0, "g0")
    _log("green", 0, 7.0, "g0-new")  # the same cell under a changed config (new code or data): supersedes, not a 2nd seed
    runs = collect_runs("lb")
    assert len(runs) == 3
    table = aggregate(runs)
    pos = table[table.method == "pos"].iloc[0]
    assert pos.n_seeds == 2 and pos.mae_bpm == 4.0  # (2 + 6) / 2
    assert abs(pos.mae_se - (0.5**2 * 2) ** 0.5 / 2) < 1e-12
    assert list(table.method) == ["pos", "green"]  # sorted by MAE
    green = table[table.method == "green"].iloc[0]
    assert green.n_seeds == 1 and green.mae_bpm == 7.0
    out = write_leaderboard(tmp_path / "results", "lb")
    assert (tmp_path / "results" / "leaderboard.md").read_text().count("| pos |") == 1
    csv = pd.read_csv(tmp_path / "results" / "leaderboard.csv")
    assert {"method", "protocol", "n_seeds", "mae_bpm", "mae_se", "rmse_bpm", "mape", "pearson", "snr_db"} <= set(csv.columns)
    assert len(out) == 2
