"""CLI smoke runs (issue 17.4): the user's main path as real ``rppg-bench`` processes on tiny data —
exit codes and the files each command writes. In-process tests cover each command's logic; these
catch what only a real process shows (entry point, hydra's working directory and argv handling,
child processes of ``bench``, a sweep over a suite, files written relative to the working folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
TINY = ["protocol=synthetic_intra", "protocol.datasets.lab.n_subjects=6", "protocol.datasets.lab.duration_s=12",
        "+protocol.datasets.lab.frame_size=32", "progress=false", "eval.n_boot=100"]


def _cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RPPG_BENCH_HYDRA_DIR": str(cwd / "outputs")}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_run_sweep_bench_leaderboard_and_report_as_processes(tmp_path):
    store = [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/art",
             f"cache_dir={tmp_path}/cache", f"runs_dir={tmp_path}/runs"]
    # a hydra multirun of two methods
    p = _cli(["run", "-m", "method=pos,green", *TINY, *store], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("[done]") == 2 and "[done] pos/synthetic_intra/seed0" in p.stdout
    # bench: the two finished configs are skipped, a third method runs in its own child, leaderboard written
    p = _cli(["bench", "methods=pos,green,chrom", "prefill_workers=1", "jobs=2", *TINY, *store], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("[skip]") == 2 and "[done] chrom/synthetic_intra/seed0" in p.stdout
    assert "[prefill] cache for synthetic_intra at sizes 72" in p.stdout and "2 at a time" in p.stdout
    board = pd.read_csv(tmp_path / "results" / "leaderboard.local.csv")
    assert sorted(board["method"]) == ["chrom", "green", "pos"] and set(board["protocol"]) == {"synthetic_intra"}
    assert (board["n_subjects"] == 2).all() and board["mae_bpm"].notna().all()
    # report on the same store
    p = _cli(["report", "protocol=synthetic_intra", "n_boot=99", *store], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "## synthetic_intra" in (tmp_path / "results" / "report.md").read_text()
    # a bad override: one line, exit 1, nothing run
    p = _cli(["run", "method=physnet", "trainer.epochs=-1", *TINY, *store], tmp_path)
    assert p.returncode == 1 and p.stderr.strip().startswith("error:") and "Traceback" not in p.stderr


def test_methods_datasets_and_unknown_command_as_processes(tmp_path):
    p = _cli(["methods"], tmp_path)
    assert p.returncode == 0 and "physnet" in p.stdout and "lq_rppg" in p.stdout
    p = _cli(["datasets"], tmp_path)
    assert p.returncode == 0 and "ubfc_rppg" in p.stdout and "synthetic" in p.stdout
    p = _cli(["nope"], tmp_path)
    assert p.returncode == 2 and "valid:" in p.stderr
