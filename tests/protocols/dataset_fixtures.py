"""Helpers that write tiny datasets in their exact on-disk layouts (used by tests/protocols/test_datasets_*).

Videos are written losslessly with FFV1 in AVI — the installed OpenCV writes and reads it back
bit-exactly (MJPG/XVID/mp4v are lossy), so tests can compare decoded frames with what was written.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

LOSSLESS = "FFV1"


def frames_rgb(n: int, h: int = 16, w: int = 20, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8 frames, each distinct (a per-frame level plus fixed texture)."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 60, size=(h, w, 3))
    level = (np.arange(n) * 7) % 180
    return (tex[None] + level[:, None, None, None] + np.array([10, 40, 70])).clip(0, 255).astype(np.uint8)


def write_video(path: str | Path, frames: np.ndarray, fps: float, codec: str = LOSSLESS) -> Path:
    """Write RGB frames (T, H, W, 3) with OpenCV; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {codec} to {path}"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_images(folder: str | Path, frames: np.ndarray, names: list[str]) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f, name in zip(frames, names, strict=True):
        p = folder / name
        assert cv2.imwrite(str(p), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        out.append(p)
    return out


def sine(t: np.ndarray, hz: float = 1.0, phase: float = 0.3) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.asarray(t, dtype=np.float64) + phase)


@pytest.fixture
def tiny_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept records of a few frames: the layout tests parse tiny files. The 2-s minimum itself (and
    the 1-frame rejection, which stays on) is tested in ``test_data_integrity.py``. Use it with
    ``from dataset_fixtures import tiny_records`` and ``pytestmark = pytest.mark.usefixtures("tiny_records")``."""
    from protocols.datasets._common import FileLoader

    monkeypatch.setattr(FileLoader, "min_seconds", 0.0)
