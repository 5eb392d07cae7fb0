"""`rppg-bench bench seeds=0,1,2`: every method runs once per seed (a seed override per run), then the
leaderboard is written (as the user's local file)."""

from __future__ import annotations

from benchmark import cli


def test_bench_runs_every_method_with_every_seed(monkeypatch, capsys):
    calls, boards = [], []
    monkeypatch.setattr("benchmark.runner.run", lambda cfg: calls.append((cfg.method.name, int(cfg.seed), cfg.protocol.name)) or {})
    monkeypatch.setattr("benchmark.leaderboard.cmd_leaderboard", lambda argv: boards.append(list(argv)) or 0)
    assert cli.main(["bench", "methods=pos,chrom", "seeds=0,1,2", "protocol=synthetic_intra", "tracking.experiment=x"]) == 0
    assert calls == [(m, s, "synthetic_intra") for m in ("pos", "chrom") for s in (0, 1, 2)]
    assert boards == [["tracking.experiment=x"]]
    assert "seeds: 0, 1, 2" in capsys.readouterr().out
    calls.clear()
    assert cli.main(["bench", "methods=pos", "protocol=synthetic_intra"]) == 0
    assert calls == [("pos", 0, "synthetic_intra")]  # no seeds=: the config's seed, once
    assert "the committed reference uses seeds=0,1,2" in capsys.readouterr().out
