"""`rppg-bench bench seeds=0,1,2`: every method runs once per seed (a seed override per run), then the
leaderboard is written (as the user's local file)."""

from __future__ import annotations

from benchmark import cli


def test_bench_runs_every_method_with_every_seed(monkeypatch, capsys):
    calls, boards = [], []
    monkeypatch.setattr("benchmark.runner.run", lambda cfg: calls.append((cfg.method.name, int(cfg.seed), cfg.protocol.name)) or {})
    monkeypatch.setattr("benchmark.leaderboard.cmd_leaderboard", lambda argv: boards.append(list(argv)) or 0)
    assert cli.main(["bench", "methods=pos,chrom", "seeds=0,1,2", "protocol=synthetic_intra", "tracking.experiment=x", "isolate=false"]) == 0
    assert calls == [(m, s, "synthetic_intra") for m in ("pos", "chrom") for s in (0, 1, 2)]
    assert boards == [["tracking.experiment=x"]]
    assert "seeds: 0, 1, 2" in capsys.readouterr().out
    calls.clear()
    assert cli.main(["bench", "methods=pos", "protocol=synthetic_intra", "isolate=false"]) == 0
    assert calls == [("pos", 0, "synthetic_intra")]  # no seeds=: the config's seed, once
    assert "the committed reference uses seeds=0,1,2" in capsys.readouterr().out


def test_bench_runs_each_method_in_its_own_process_and_reports_failures(monkeypatch, capsys):
    """Default ``isolate=true``: every run is a child ``rppg-bench run`` process; one that fails (here
    an unknown method, rejected by the child at composition) is named with its exit status, the
    others still run, the leaderboard is still written, and the exit status is 1."""
    boards = []
    monkeypatch.setattr("benchmark.leaderboard.cmd_leaderboard", lambda argv: boards.append(list(argv)) or 0)
    children = []
    real = cli._run_child

    def spy(overrides):
        children.append(list(overrides))
        return real(overrides)

    monkeypatch.setattr(cli, "_run_child", spy)
    assert cli.main(["bench", "methods=no_such_method", "seeds=3", "tracking.experiment=x"]) == 1
    out, err = capsys.readouterr()
    assert children == [["method=no_such_method", "tracking.experiment=x", "seed=3"]]
    assert "failed runs: no_such_method seed 3 (exit 1)" in err
    assert "each run in its own process" in out
    assert boards == [["tracking.experiment=x"]]
    assert cli.main(["bench", "methods=pos", "isolate=maybe"]) == 2
