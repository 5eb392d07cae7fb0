"""`rppg-bench bench seeds=0,1,2`: every method runs once per seed (a seed override per run), then the
leaderboard is written (as the user's local file)."""

from __future__ import annotations

from benchmark import cli


def test_bench_runs_every_method_with_every_seed(monkeypatch, capsys):
    calls, boards = [], []
    monkeypatch.setattr("benchmark.runner.run", lambda cfg: calls.append((cfg.method.name, int(cfg.seed), cfg.protocol.name)) or {})
    monkeypatch.setattr("benchmark.leaderboard.cmd_leaderboard", lambda argv: boards.append(list(argv)) or 0)
    assert cli.main(["bench", "methods=pos,chrom", "seeds=0,1,2", "protocol=synthetic_intra", "tracking.experiment=x", "isolate=false",
                     "prefill_workers=0"]) == 0
    assert calls == [(m, s, "synthetic_intra") for m in ("pos", "chrom") for s in (0, 1, 2)]
    assert boards == [["tracking.experiment=x"]]
    assert "seeds: 0, 1, 2" in capsys.readouterr().out
    calls.clear()
    assert cli.main(["bench", "methods=pos", "protocol=synthetic_intra", "isolate=false", "prefill_workers=0"]) == 0
    assert calls == [("pos", 0, "synthetic_intra")]  # no seeds=: the config's seed, once
    assert "the committed reference uses seeds=0,1,2" in capsys.readouterr().out


def test_bench_runs_each_method_in_its_own_process_and_reports_failures(monkeypatch, capsys):
    """Default ``isolate=true``: every run is a child ``rppg-bench run`` process; one that fails (here
    an unknown method, rejected by the child at composition) is named with its exit status, the
    others still run, the leaderboard is still written, and the exit status is 1."""
    boards = []
    monkeypatch.setattr("benchmark.leaderboard.cmd_leaderboard", lambda argv: boards.append(list(argv)) or 0)
    children = []
    from benchmark import bench

    real = bench._spawn_run

    def spy(overrides):
        children.append(list(overrides))
        return real(overrides)

    monkeypatch.setattr(bench, "_spawn_run", spy)
    assert cli.main(["bench", "methods=no_such_method", "seeds=3", "tracking.experiment=x", "protocol=synthetic_intra", "jobs=1"]) == 1
    out, err = capsys.readouterr()
    assert children == [["method=no_such_method", "tracking.experiment=x", "seed=3", "protocol=synthetic_intra"]]
    assert "failed runs: no_such_method seed 3 (exit 1)" in err
    assert "each run in its own process" in out
    assert boards == [["tracking.experiment=x"]]
    assert cli.main(["bench", "methods=pos", "isolate=maybe"]) == 2
    # two jobs at a time: both children start before either ends; their progress bars are off
    children.clear()
    assert cli.main(["bench", "methods=bad_a,bad_b", "tracking.experiment=x", "protocol=synthetic_intra", "jobs=2"]) == 1
    out, err = capsys.readouterr()
    assert sorted(children) == [[f"method=bad_{m}", "tracking.experiment=x", "progress=false", "protocol=synthetic_intra"]
                                for m in "ab"]
    assert "started bad_b seed default (2/2)" in out and "bad_a seed default (exit 1)" in err and "bad_b seed default (exit 1)" in err
    assert "2 at a time" in out


def test_bench_on_a_suite_fills_the_cache_once_and_tests_every_tier(monkeypatch, capsys):
    """The default ``synthetic_cross`` is a suite: every method runs on its three tier protocols (a
    neural method trains once: same training hash), after one cache fill at every method's size."""
    calls, fills = [], []
    monkeypatch.setattr("benchmark.runner.run", lambda cfg: calls.append((cfg.method.name, cfg.protocol.name)) or {})
    monkeypatch.setattr("benchmark.runner.prefill", lambda cfgs, pcfg, sizes, cache, **kw: fills.append(
        ([c["name"] for c in cfgs], sorted(sizes), kw["workers"])))
    monkeypatch.setattr("benchmark.leaderboard.cmd_leaderboard", lambda argv: 0)
    assert cli.main(["bench", "methods=pos,physnet,lq_rppg", "isolate=false", "prefill_workers=2", "trainer=quick"]) == 0
    tiers = ["synthetic_cross_ubfc_like", "synthetic_cross_pure_like", "synthetic_cross_mmpd_like"]
    assert calls == [(m, t) for m in ("pos", "physnet", "lq_rppg") for t in tiers]
    assert fills == [(tiers, [36, 64, 72], 2)]  # physnet quick 36², LQ-rPPG quick 64², unsupervised 72²
    assert cli.expand_protocol_args(["method=pos"]) == ["--multirun", "method=pos", f"protocol={','.join(tiers)}"]
    assert cli.expand_protocol_args(["method=pos", "protocol=synthetic_intra"]) == ["method=pos", "protocol=synthetic_intra"]


def test_a_suite_is_not_a_protocol_of_one_run():
    import pytest

    from protocols.protocol import Protocol, ProtocolError

    with pytest.raises(ProtocolError, match="suite of synthetic_cross_ubfc_like.*expand"):
        Protocol.from_config({"name": "synthetic_cross", "suite": ["synthetic_cross_ubfc_like"]})
