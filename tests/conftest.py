"""Shared tiny fixtures: a toy dataset with a known pulse and a run-config builder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from protocols.base import ArrayFrames, Loader, Record, register_dataset  # noqa: E402


def clean_ppg(seed: int, duration: float = 30.0, fps: float = 30.0) -> np.ndarray:
    """Clean synthetic contact PPG (neurokit2): 60–95 bpm with heart-rate variability, no artefacts."""
    import warnings

    import neurokit2 as nk

    hr = float(np.random.default_rng(1000 + seed).uniform(60, 95))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nk.ppg_simulate(
            duration=duration, sampling_rate=int(fps), heart_rate=hr, frequency_modulation=0.2,
            ibi_randomness=0.15, drift=0, motion_amplitude=0, powerline_amplitude=0, burst_number=0,
            random_state=seed,
        )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test with one torch thread (small models: threading costs more than it gains), then restore."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pulse_video(hr_bpm: float, n: int, fps: float, size: int = 24, seed: int = 0, amp: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(T, size, size, 3) uint8 frames whose skin-coloured pixels pulse at ``hr_bpm`` + the PPG."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    ppg = np.sin(2 * np.pi * hr_bpm / 60 * t) + 0.3 * np.sin(4 * np.pi * hr_bpm / 60 * t + 0.5)
    base = np.array([180.0, 120.0, 100.0])
    direction = np.array([0.33, 0.77, 0.53])
    tex = rng.normal(0, 4, size=(size, size, 3))
    frames = base + tex[None] + (amp * base * direction)[None, None, None, :] * ppg[:, None, None, None]
    frames = frames + rng.normal(0, 0.5, size=frames.shape)
    return np.clip(np.round(frames), 0, 255).astype(np.uint8), ppg


@register_dataset("toy")
class ToyLoader(Loader):
    """Tiny in-memory dataset for tests: n_subjects records with known HRs."""

    def __init__(self, n_subjects: int = 4, n_frames: int = 300, fps: float = 30.0, size: int = 24, seed: int = 0,
                 nan_label: bool = False):
        self.n_subjects, self.n_frames, self.fps, self.size, self.seed = n_subjects, n_frames, fps, size, seed
        self.nan_label = nan_label

    def key(self) -> str:
        return f"toy-{self.n_subjects}-{self.n_frames}-{self.fps}-{self.size}-{self.seed}-{self.nan_label}"

    def hrs(self) -> list[float]:
        return [60.0 + 12.0 * i for i in range(self.n_subjects)]

    def records(self) -> Iterator[Record]:
        for i, hr in enumerate(self.hrs()):
            frames, ppg = pulse_video(hr, self.n_frames, self.fps, self.size, seed=self.seed + i)
            if self.nan_label:
                ppg = ppg.copy()
                ppg[5] = np.nan
            yield Record(id=f"toy{i:02d}", subject=f"s{i:02d}", dataset="toy", fps=self.fps, frames=ArrayFrames(frames),
                         ppg=ppg, meta={"face_box": (2, 2, self.size - 4, self.size - 4), "hr_bpm": hr})


def toy_protocol(n_subjects: int = 4, n_frames: int = 300, **kw) -> dict:
    ds = {"name": "toy", "n_subjects": n_subjects, "n_frames": n_frames, **kw}
    return {
        "name": "toy_intra",
        "datasets": {"toy": ds},
        "splits": {
            "train": [{"dataset": "toy", "begin": 0.0, "end": 0.5}],
            "val": [{"dataset": "toy", "begin": 0.5, "end": 0.75}],
            "test": [{"dataset": "toy", "begin": 0.75, "end": 1.0}],
        },
    }


@pytest.fixture
def run_cfg(tmp_path: Path):
    """Factory for a plain run config writing MLflow/cache/checkpoints under tmp_path."""

    def make(method: dict, protocol: dict | None = None, **over) -> dict:
        cfg = {
            "method": method,
            "protocol": protocol or toy_protocol(),
            "trainer": {"name": "quick", "quick_shapes": False, "epochs": 2, "batch_size": 2, "optimizer": "adamw",
                        "lr": 1e-3, "scheduler": "onecycle", "select": "val_loss", "device": "cpu", "amp": "none"},
            "labels": {"name": "clean", "transforms": []},
            "eval": {"window_s": 5.0, "overlap": 0.0, "band": [0.75, 2.5], "n_boot": 200},
            "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "test", "artifacts": str(tmp_path / "art")},
            "preprocess": {"size": 16},
            "seed": 0, "progress": False, "skip_finished": True,
            "cache_dir": str(tmp_path / "cache"), "runs_dir": str(tmp_path / "runs"),
        }
        cfg.update(over)
        return cfg

    return make
