"""Bad input at the boundaries gets a clear error naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.base import ArrayFrames, DatasetFormatError, Record


def _frames(n=10, dtype=np.uint8):
    return ArrayFrames(np.zeros((n, 8, 8, 3), dtype=dtype))


def test_unknown_protocol_lists_valid_names():
    from hydra.errors import MissingConfigException

    from benchmark.cli import compose

    with pytest.raises(MissingConfigException) as exc:
        compose(["protocol=no_such_protocol"])
    assert "synthetic_cross" in str(exc.value) and "synthetic_intra" in str(exc.value)


def test_unknown_method_via_cli_lists_valid_names():
    from hydra.errors import MissingConfigException

    from benchmark.cli import compose

    with pytest.raises(MissingConfigException) as exc:
        compose(["method=no_such_method"])
    assert "pos" in str(exc.value) and "physnet" in str(exc.value)


@pytest.mark.parametrize("fps", [0.0, -30.0, float("nan")])
def test_fps_must_be_positive(fps):
    with pytest.raises(DatasetFormatError, match="fps must be > 0"):
        Record(id="r", subject="s", dataset="d", fps=fps, frames=_frames(), ppg=np.zeros(10))


def test_empty_record():
    with pytest.raises(DatasetFormatError, match="empty record"):
        Record(id="r", subject="s", dataset="d", fps=30.0, frames=_frames(0), ppg=np.zeros(0))


def test_nan_label_and_length_mismatch():
    with pytest.raises(DatasetFormatError, match="NaN"):
        Record(id="r", subject="s", dataset="d", fps=30.0, frames=_frames(), ppg=np.full(10, np.nan))
    with pytest.raises(DatasetFormatError, match="one sample per frame"):
        Record(id="r", subject="s", dataset="d", fps=30.0, frames=_frames(), ppg=np.zeros(9))


def test_float_frames_with_nan_rejected():
    frames = np.full((10, 8, 8, 3), np.nan, dtype=np.float32)
    with pytest.raises(DatasetFormatError, match="must be uint8 RGB, got float32"):
        ArrayFrames(frames, name="clip.npy")


def test_nan_frames_rejected_by_chunk_statistics():
    from benchmark.data import record_stats

    with pytest.raises(DatasetFormatError, match="NaN"):
        record_stats(np.full((4, 2, 2, 3), np.nan, dtype=np.float32))
