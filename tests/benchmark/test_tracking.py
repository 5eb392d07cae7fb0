"""MLflow tracking across processes: concurrent start on a fresh store, killed runs, resume.

These tests start real processes (``subprocess``) because the faults are between processes: two
runs racing to create the SQLite schema, and a run killed with SIGKILL that leaves a RUNNING run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

#: A child process: tiny run config (toy data from conftest, tiny 3-D conv net), optional barrier
#: (wait for a file so that two children enter ``run`` at the same moment) and optional
#: self-SIGKILL right after the first epoch checkpoint (``last.pt``) is written — a deterministic
#: stand-in for "kill -9 once the first checkpoint appears".
CHILD = textwrap.dedent('''
    import json, os, signal, sys, time
    from dataclasses import dataclass
    sys.path[:0] = [{tests!r}]
    import torch
    from torch import nn
    import conftest
    from benchmark.losses import neg_pearson
    from benchmark.method import InputSpec, NeuralMethod
    from benchmark.registry import register_method
    import benchmark.trainer as trainer
    from benchmark.runner import run

    torch.set_num_threads(1)

    class TinyNet(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv3d(c, 4, (3, 3, 3), padding=1)
            self.head = nn.Conv1d(4, 1, 1)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean(dim=(3, 4)))[:, 0]

    @register_method("h3_tiny")
    class Tiny(NeuralMethod):
        """Tiny 3-D conv net (test-only)."""
        input = InputSpec(frames=60, size=16, transforms=("diff_normalized",), label="diff_normalized")

        def build_model(self):
            return TinyNet(self.in_channels)

        def loss(self, out, batch, *, epoch=0, num_epochs=1):
            return neg_pearson(out, batch["label"])

    args = json.loads(sys.argv[1])
    if args.get("kill_after_first_checkpoint"):
        save = trainer._atomic_save
        def save_then_die(obj, path):
            save(obj, path)
            if path.name == "last.pt":
                os.kill(os.getpid(), signal.SIGKILL)
        trainer._atomic_save = save_then_die
    for cfg, barrier in zip(args["cfgs"], args.get("barriers") or [None] * len(args["cfgs"])):
        if barrier:
            open(barrier + "." + str(os.getpid()), "w").close()
            while not os.path.exists(barrier):
                time.sleep(0.005)
        out = run(cfg)
        print("METRICS " + json.dumps(out), flush=True)
''').format(tests=str(TESTS))


def _cfg(tmp: Path, store: Path, method: dict, **over) -> dict:
    from conftest import toy_protocol

    cfg = {
        "method": method,
        "protocol": toy_protocol(n_subjects=4, n_frames=180),
        "trainer": {"name": "quick", "quick_shapes": False, "epochs": 3, "batch_size": 2, "optimizer": "adamw",
                    "lr": 1e-2, "scheduler": "onecycle", "select": "val_loss", "device": "cpu", "amp": "none",
                    "threads": 1},  # two children train at once on 2 cores
        "labels": {"name": "clean", "transforms": []},
        "eval": {"window_s": 5.0, "overlap": 0.0, "band": [0.75, 2.5], "n_boot": 50},
        "tracking": {"uri": f"sqlite:///{store}/mlflow.db", "experiment": "test", "artifacts": str(store / "art")},
        "preprocess": {"size": 16},
        "seed": 0, "progress": False, "skip_finished": True,
        "cache_dir": str(tmp / "cache"), "runs_dir": str(tmp / "runs"),
    }
    cfg.update(over)
    return cfg


def _child(tmp: Path, args: dict) -> subprocess.Popen:
    script = tmp / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script), json.dumps(args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _metrics(out: str) -> dict:
    return json.loads(next(line for line in out.splitlines() if line.startswith("METRICS "))[8:])


def _runs(store: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    exp = client.get_experiment_by_name("test")
    return client.search_runs([exp.experiment_id])


def test_two_runs_started_together_on_a_fresh_store_both_finish(tmp_path):
    """Before: one of the two processes died with ``table ... already exists`` or ``duplicate column
    name`` while both created the SQLite schema (3 of 3 tries). Each child process starts three runs,
    each on a fresh store, released together by a barrier file, so the imports are paid once."""
    stores = [tmp_path / f"store{i}" for i in range(3)]  # fresh: not even the folders exist
    barriers = [str(tmp_path / f"go{i}") for i in range(3)]
    procs = [_child(tmp_path, {"cfgs": [_cfg(tmp_path, st, {"name": "pos"}, seed=seed) for st in stores], "barriers": barriers})
             for seed in (0, 1)]
    for b in barriers:
        deadline = time.time() + 300
        while len(list(tmp_path.glob(Path(b).name + ".*"))) < 2 and time.time() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.01)
        Path(b).touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"a concurrent run crashed:\n{err[-3000:]}"
        assert out.count("METRICS") == 3
    for st in stores:
        assert sorted(r.info.status for r in _runs(st)) == ["FINISHED", "FINISHED"]


def test_a_killed_run_is_continued_by_the_next_start_of_its_config(tmp_path):
    """Before: the SIGKILLed run stayed RUNNING forever and the re-run finished as a second run.
    After: the re-run continues the killed MLflow run (and the training checkpoint): one FINISHED run,
    nothing RUNNING, and the same test metrics as a run that was never interrupted."""
    tiny = {"name": "h3_tiny", "frames": None, "size": None, "checkpoint": None}
    a, b = tmp_path / "killed", tmp_path / "clean"
    a.mkdir(), b.mkdir()
    killed = _child(a, {"cfgs": [_cfg(a, a / "store", tiny)], "kill_after_first_checkpoint": True})
    clean = _child(b, {"cfgs": [_cfg(b, b / "store", tiny)]})
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert [r.info.status for r in _runs(a / "store")] == ["RUNNING"]  # what a kill -9 leaves behind
    killed_id = _runs(a / "store")[0].info.run_id

    again = _child(a, {"cfgs": [_cfg(a, a / "store", tiny)]})
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    runs = _runs(a / "store")
    assert [(r.info.run_id, r.info.status) for r in runs] == [(killed_id, "FINISHED")]
    assert runs[0].data.tags["rppg.restarts"] == "1"
    out_clean, err_clean = clean.communicate(timeout=300)
    assert clean.returncode == 0, err_clean[-3000:]
    resumed, uninterrupted = _metrics(out), _metrics(out_clean)
    assert resumed == uninterrupted


def test_the_process_rule_for_a_running_run():
    """Same host: the pid must exist with the recorded start time. Other host: heartbeat age."""
    import socket

    import psutil

    from benchmark.tracking import process_gone

    me = psutil.Process()
    here = {"rppg.host": socket.gethostname(), "rppg.pid": str(me.pid), "rppg.pid_started": f"{me.create_time():.3f}"}
    assert not process_gone(here)
    assert process_gone({**here, "rppg.pid_started": f"{me.create_time() - 100:.3f}"})  # pid reused
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    assert process_gone({**here, "rppg.pid": dead.stdout.strip()})
    now = time.time()
    there = {"rppg.host": "another-node", "rppg.pid": "1", "rppg.heartbeat": str(now - 3600)}
    assert not process_gone(there, now=now)
    assert process_gone(there, now=now + 12 * 3600)
    assert process_gone({}, start_time_ms=int((now - 13 * 3600) * 1000), now=now)  # a run from before these tags
