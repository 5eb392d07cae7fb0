"""Same config → same numbers, on any machine (issue 16.10).

PhysFormer ``trainer=quick`` on synthetic_cross gave 38.09 bpm in one place and 12.59 in another
from the same commit and seed: torch used as many CPU threads as the machine has cores, and with one
thread PhysFormer's feed-forward output has another memory layout than with two, so dropout hits
other elements (``benchmark.trainer.configure_determinism``). Here a tiny PhysFormer is trained in
two separate processes whose thread environment differs; the runner's fixed ``trainer.threads``
must give identical metrics. Before the fix the two processes differ (38.17 vs 38.66 bpm with
these settings; 39.0 vs 16.0 with four batches per epoch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from benchmark.trainer import Trainer, TrainerConfig

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
sys.path.insert(0, "tests")
import conftest  # registers the toy dataset
from benchmark.runner import run
tmp = sys.argv[1]
cfg = {
    "method": {"name": "physformer", "frames": 32, "size": 32, "dim": 24, "ff_dim": 32, "num_heads": 2, "num_layers": 3},
    "protocol": conftest.toy_protocol(n_subjects=4, n_frames=150),
    "trainer": {"name": "quick", "quick_shapes": False, "epochs": 2, "batch_size": 2, "optimizer": "adamw", "lr": 3e-3,
                "scheduler": "onecycle", "select": "val_loss", "device": "cpu", "amp": "none", "max_batches_per_epoch": 2,
                "threads": 1},  # fixed by the config: the processes below differ in OMP_NUM_THREADS; 1 each fits 2 cores
    "labels": {"name": "clean", "transforms": []},
    "eval": {"window_s": 5.0, "n_boot": 0},
    "tracking": {"uri": f"sqlite:///{tmp}/mlflow.db", "experiment": "det", "artifacts": f"{tmp}/art"},
    "preprocess": {"size": 32}, "seed": 0, "progress": False, "skip_finished": False,
    "cache_dir": f"{tmp}/cache", "runs_dir": f"{tmp}/runs",
}
print("METRICS " + json.dumps(run(cfg)))
"""


def test_physformer_training_is_identical_across_processes_and_thread_environments(tmp_path):
    procs = []
    for i, (threads, hashseed) in enumerate((("1", "0"), ("2", "12345"))):
        d = tmp_path / f"p{i}"
        d.mkdir()
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONHASHSEED": hashseed,
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "GIT_PYTHON_REFRESH": "quiet"}
        procs.append(subprocess.Popen([sys.executable, "-c", SCRIPT, str(d)], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    metrics = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        line = next(ln for ln in out.splitlines() if ln.startswith("METRICS "))
        metrics.append(json.loads(line.removeprefix("METRICS ")))
    assert metrics[0]["test/mae_bpm"] == metrics[0]["test/mae_bpm"]  # finite, a real number
    assert metrics[0] == metrics[1]


def test_trainer_fixes_threads_and_deterministic_kernels(tmp_path):
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    try:
        Trainer(TrainerConfig(threads=3, device="cpu"), tmp_path)
        assert torch.get_num_threads() == 3 and torch.are_deterministic_algorithms_enabled()
        Trainer(TrainerConfig(threads=1, deterministic=False, device="cpu"), tmp_path)
        assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
