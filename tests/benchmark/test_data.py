"""Frame transforms match the toolbox formulas; chunking; label hook."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.data import ChunkDataset, chunk_starts, record_stats, transform_chunk
from benchmark.labels import build_label_pipeline, create_label_transform
from protocols.preprocess import CachedRecord


def _rec(n=50, seed=0, size=6):
    rng = np.random.default_rng(seed)
    frames = rng.integers(10, 250, size=(n, size, size, 3), dtype=np.uint8)
    ppg = np.sin(np.arange(n) / 3.0)
    return CachedRecord(id=f"r{seed}", subject=f"s{seed}", dataset="t", fps=30.0, frames=frames, ppg=ppg, meta={}, path=None)


def test_transforms_match_whole_video_formulas():
    rec = _rec()
    x = rec.frames.astype(np.float64)
    stats = record_stats(rec.frames, block=7)  # block size must not matter
    # standardized
    std_ref = (x - x.mean()) / x.std()
    got = transform_chunk(rec.frames, 10, 20, ("standardized",), stats)
    np.testing.assert_allclose(got.transpose(1, 2, 3, 0), std_ref[10:30], rtol=1e-4, atol=1e-4)
    # diff_normalized: d over the video, one zero frame appended, divided by the std of all of it
    d = (x[1:] - x[:-1]) / (x[1:] + x[:-1] + 1e-7)
    full = np.concatenate([d, np.zeros((1,) + d.shape[1:])], axis=0)
    full = full / full.std()
    for start in (0, 30):  # 30..50 ends at the last frame: last frame of the chunk is the zero frame
        got = transform_chunk(rec.frames, start, 20, ("diff_normalized",), stats)
        np.testing.assert_allclose(got.transpose(1, 2, 3, 0), full[start : start + 20], rtol=1e-4, atol=1e-4)
    # concatenation order on the channel axis
    both = transform_chunk(rec.frames, 0, 20, ("diff_normalized", "standardized"), stats)
    assert both.shape == (6, 20, 6, 6)
    np.testing.assert_allclose(both[3:].transpose(1, 2, 3, 0), std_ref[:20], rtol=1e-4, atol=1e-4)


def test_chunking_and_tail():
    assert chunk_starts(100, 30, 30, False) == [0, 30, 60]
    assert chunk_starts(100, 30, 30, True) == [0, 30, 60, 70]
    assert chunk_starts(100, 30, 15, False) == [0, 15, 30, 45, 60]
    ds = ChunkDataset([_rec(100)], 30, ("raw",))
    item = ds[1]
    assert item["frames"].shape == (3, 30, 6, 6) and item["start"] == 30
    np.testing.assert_allclose(item["label"].numpy(), _rec(100).ppg[30:60], rtol=1e-6)


def test_label_pipeline_record_then_chunk_scope():
    rec = _rec(100)
    pipe = build_label_pipeline(["standardized", "zscore_chunk"])
    ds = ChunkDataset([rec], 30, ("raw",), label_transforms=pipe)
    y = ds[2]["label"].numpy()
    assert abs(y.mean()) < 1e-5 and abs(y.std(ddof=1) - 1) < 1e-3
    dn = create_label_transform("diff_normalized")(rec.ppg, 30.0, np.random.default_rng(0))
    assert dn[-1] == 0 and len(dn) == len(rec.ppg)
    with pytest.raises(KeyError, match="valid:"):
        create_label_transform("nope")


def test_nan_frames_or_labels_rejected():
    from protocols.base import DatasetFormatError

    rec = _rec()
    bad = CachedRecord(**{**rec.__dict__, "ppg": np.where(np.arange(50) == 3, np.nan, rec.ppg)})
    with pytest.raises(DatasetFormatError, match="NaN"):
        ChunkDataset([bad], 20, ("raw",))
