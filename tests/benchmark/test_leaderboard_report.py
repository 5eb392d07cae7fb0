"""`rppg-bench report`: results/report.md and LaTeX fragments from tracked runs (or the committed tables)."""

from __future__ import annotations

from benchmark import tracking
from benchmark.report import write_report
from tests.benchmark.test_leaderboard import _log, _preds


def test_report_from_runs_and_from_committed_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracking.setup(f"sqlite:///{tmp_path}/m.db", "rep", str(tmp_path / "art"))
    results = tmp_path / "results"
    results.mkdir()
    (results / "efficiency.csv").write_text("method,device,shape,params,macs_per_clip,throughput_clips_s,peak_mem_mb\n"
                                            "physnet,cpu,3x128x72x72,768577,17560000000,4.1,240\n")
    for i, (m, sc) in enumerate((("pos", 1.0), ("chrom", 2.0), ("green", 6.0))):
        _log(m, 0, f"{m}0", _preds(sc, i), protocol="synthetic_cross_ubfc_like")
    _log("pos", 0, "other", _preds(1.0, 9), protocol="other")
    md = write_report(results, "rep", protocol="synthetic_cross", n_boot=199).read_text()
    assert "## synthetic_cross_ubfc_like" in md and "## other" not in md  # the suite selects its member
    assert "Friedman test over 3 methods × 8 subjects" in md and "| pos | chrom |" in md
    assert "![critical-difference diagram](report/cd_synthetic_cross_ubfc_like.png)" in md and "## Efficiency" in md and "768,577" in md
    rep = results / "report"
    for f in ("leaderboard_synthetic_cross_ubfc_like.tex", "pairs_synthetic_cross_ubfc_like.tex", "bland_altman_synthetic_cross_ubfc_like.tex", "efficiency.tex",
              "cd_synthetic_cross_ubfc_like.png", "ba_synthetic_cross_ubfc_like.png"):
        assert (rep / f).stat().st_size > 100, f
    assert r"\sqrt{2}" in (rep / "bland_altman_synthetic_cross_ubfc_like.tex").read_text()  # states: no √2 widening
    # an empty store: the committed leaderboard tables are used, and the report says so
    from benchmark.leaderboard import write_leaderboard

    write_leaderboard(results, "rep", publish=True, n_boot=199, log_mlflow=False)
    tracking.setup(f"sqlite:///{tmp_path}/empty.db", "none", str(tmp_path / "art2"))
    md2 = write_report(results, "none", protocol="synthetic_cross").read_text()
    assert "committed results/leaderboard*.csv" in md2 and "| pos | chrom |" in md2
    assert "figures/cd_synthetic_cross_ubfc_like.png" in md2


def test_leaderboard_and_report_commands(tmp_path, monkeypatch, capsys):
    from benchmark import cli

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/c.db"
    tracking.setup(uri, "cmd", str(tmp_path / "art"))
    for i, (m, sc) in enumerate((("pos", 1.0), ("chrom", 2.0), ("green", 6.0))):
        _log(m, 0, f"{m}0", _preds(sc, i), protocol="synthetic_cross")
    over = [f"tracking.uri={uri}", "tracking.experiment=cmd", f"tracking.artifacts={tmp_path}/art"]
    assert cli.main(["leaderboard", "n_boot=199", *over]) == 0
    out = capsys.readouterr().out
    assert "leaderboard.local.md" in out and "the committed reference results/leaderboard.* is unchanged" in out
    assert (tmp_path / "results" / "leaderboard.local.md").exists() and not (tmp_path / "results" / "leaderboard.md").exists()
    assert cli.main(["leaderboard", "publish=maybe", *over]) == 2
    assert cli.main(["report", "protocol=synthetic_cross", "n_boot=199", *over]) == 0
    assert (tmp_path / "results" / "report.md").exists()
    assert cli.main(["report", "protocol=nope", *over]) == 2
    assert "no runs of protocol 'nope'" in capsys.readouterr().out
