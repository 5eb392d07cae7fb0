"""``protocol=eval_only``: any method on any dataset without writing a protocol (the ``folder`` format)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmark.cli import main
from conftest import pulse_video


@pytest.fixture
def folder(tmp_path):
    """Two recordings in the ``folder`` format: <name>.avi + <name>.csv (time, ppg)."""
    root = tmp_path / "recordings"
    root.mkdir()
    fps, n = 30.0, 360
    for i, hr in enumerate((66.0, 84.0)):
        frames, ppg = pulse_video(hr, n, fps, size=32, seed=i, amp=0.03)
        wr = cv2.VideoWriter(str(root / f"rec{i}.avi"), cv2.VideoWriter_fourcc(*"FFV1"), fps, (32, 32))
        assert wr.isOpened()
        for f in frames:
            wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        wr.release()
        t = np.arange(n) / fps
        np.savetxt(root / f"rec{i}.csv", np.column_stack([t, ppg]), delimiter=",", header="time,ppg", comments="")
    return root


def _args(tmp_path, root, *extra):
    return ["run", "method=pos", "protocol=eval_only", "dataset=folder", f"dataset.root={root}",
            "preprocess.detection=none", "preprocess.size=16", "progress=false", f"cache_dir={tmp_path / 'cache'}",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "eval.window_s=6", *extra]


def test_eval_only_runs_a_method_on_every_record_of_a_folder(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RPPG_BENCH_HYDRA_DIR", str(tmp_path / "outputs"))
    assert main(_args(tmp_path, folder)) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("[done] pos/eval_only"))
    assert "4 windows" in line  # 2 records × 12 s / 6-s windows: every record is in the test split
    mae = float(line.split("MAE ")[1].split(" bpm")[0])
    assert mae < 3.0, line


def test_eval_only_refuses_a_training_method_without_checkpoint(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RPPG_BENCH_HYDRA_DIR", str(tmp_path / "outputs"))
    args = [a if a != "method=pos" else "method=physnet" for a in _args(tmp_path, folder)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "must be trained, and protocol 'eval_only' has no training split: give method.checkpoint=FILE" in err
    assert not (tmp_path / "cache").exists()


def test_eval_only_without_a_dataset_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RPPG_BENCH_HYDRA_DIR", str(tmp_path / "outputs"))
    assert main(["run", "method=pos", "protocol=eval_only", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"]) == 1
    assert "evaluates the dataset given by dataset=<name> dataset.root=PATH" in capsys.readouterr().err
