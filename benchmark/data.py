"""Chunk datasets over cached records: frame transforms on the fly, training-label hook.

Frame transforms (``shared/reference/models.md`` §1, statistics over the **whole record**):

* ``raw`` — pixel values 0–255 as float32;
* ``standardized`` — one scalar mean/std over all frames, pixels and channels of the record;
* ``diff_normalized`` — d_t = (x_{t+1} − x_t)/(x_{t+1} + x_t + 1e−7), divided by the std of all d of
  the record, a zero frame appended at the record's end (so a chunk ending at the last frame ends
  with zeros, exactly as the toolbox's whole-video transform followed by chunking).

Several transforms are concatenated on the channel axis in order. Record statistics are computed
once by streaming the memmap in blocks (no float64 copy of a video) and kept per record.

Training labels go through a list of :class:`benchmark.labels.LabelTransform`: the leading
record-scope transforms run on the whole record, everything from the first chunk-scope transform on
runs per chunk. Random transforms get a generator seeded from (seed, record id), so labels are
reproducible. Items are dicts: ``frames`` (C, T, H, W) float32, ``label`` (T,), ``fps``, ``record``
(index), ``record_id``, ``start``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark.labels import LabelTransform
from protocols.base import DatasetFormatError
from protocols.preprocess import CachedRecord

FRAME_TRANSFORMS = ("raw", "standardized", "diff_normalized")


class ChunkError(ValueError):
    """The requested chunking does not fit the data."""


def record_stats(frames: np.ndarray, block: int = 256) -> dict[str, float]:
    """Whole-record mean/std of pixels and std of normalized differences, streamed in blocks."""
    n = len(frames)
    s = s2 = 0.0
    count = 0
    ds = ds2 = 0.0
    dcount = 0
    prev = None
    for start in range(0, n, block):
        blk = np.asarray(frames[start : start + block], dtype=np.float32)
        if not np.all(np.isfinite(blk)):
            raise DatasetFormatError("frames", "NaN/inf in frames")
        s += float(blk.sum(dtype=np.float64))
        s2 += float(np.square(blk, dtype=np.float64).sum())
        count += blk.size
        seq = blk if prev is None else np.concatenate([prev[None], blk], axis=0)
        if len(seq) > 1:
            d = (seq[1:] - seq[:-1]) / (seq[1:] + seq[:-1] + 1e-7)
            ds += float(d.sum(dtype=np.float64))
            ds2 += float(np.square(d, dtype=np.float64).sum())
            dcount += d.size
        prev = blk[-1]
    mean = s / count
    std = float(np.sqrt(max(s2 / count - mean**2, 0.0)))
    # the toolbox takes the std over the appended zero frame too
    dcount_all = dcount + (count // n if n else 0)
    dmean = ds / dcount_all if dcount_all else 0.0
    dstd = float(np.sqrt(max(ds2 / dcount_all - dmean**2, 0.0))) if dcount_all else 0.0
    return {"mean": mean, "std": std, "diff_std": dstd}


def transform_chunk(frames: np.ndarray, start: int, length: int, transforms: Sequence[str], stats: dict[str, float]) -> np.ndarray:
    """(T, H, W, 3) uint8 record → (C, length, H, W) float32 for frames [start, start+length)."""
    n = len(frames)
    need_next = "diff_normalized" in transforms
    stop = min(start + length + (1 if need_next else 0), n)
    x = np.asarray(frames[start:stop], dtype=np.float32)  # (t, H, W, 3)
    outs = []
    for tname in transforms:
        if tname == "raw":
            y = x[:length]
        elif tname == "standardized":
            y = (x[:length] - stats["mean"]) / (stats["std"] if stats["std"] > 0 else 1.0)
        elif tname == "diff_normalized":
            d = (x[1:] - x[:-1]) / (x[1:] + x[:-1] + 1e-7)
            if len(d) < length:  # chunk ends at the record's last frame: append the zero frame
                d = np.concatenate([d, np.zeros((length - len(d),) + d.shape[1:], np.float32)], axis=0)
            y = d[:length] / (stats["diff_std"] if stats["diff_std"] > 0 else 1.0)
        else:
            raise ValueError(f"unknown frame transform {tname!r}; valid: {FRAME_TRANSFORMS}")
        outs.append(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0))
    out = np.concatenate(outs, axis=-1)  # (T, H, W, C)
    return np.ascontiguousarray(out.transpose(3, 0, 1, 2))


def chunk_starts(n: int, length: int, stride: int, cover_tail: bool) -> list[int]:
    """Chunk start indices; with ``cover_tail`` a last chunk is aligned to the record's end.

    >>> chunk_starts(10, 4, 4, False)
    [0, 4]
    >>> chunk_starts(10, 4, 4, True)
    [0, 4, 6]
    """
    if length > n:
        return []
    starts = list(range(0, n - length + 1, stride))
    if cover_tail and starts[-1] + length < n:
        starts.append(n - length)
    return starts


class ChunkDataset(Dataset):
    """Chunks of cached records for a neural method.

    ``cover_tail`` adds an end-aligned last chunk (evaluation) so no frame is left unevaluated;
    training uses plain chunking (the tail is dropped, as the toolbox does).
    """

    def __init__(
        self,
        records: Sequence[CachedRecord],
        length: int,
        transforms: Sequence[str],
        *,
        stride: int | None = None,
        label_transforms: Sequence[LabelTransform] = (),
        seed: int = 0,
        cover_tail: bool = False,
        fit_labels: bool = False,
    ) -> None:
        if length < 2:
            raise ChunkError(f"chunk length must be >= 2, got {length}")
        for t in transforms:
            if t not in FRAME_TRANSFORMS:
                raise ChunkError(f"unknown frame transform {t!r}; valid: {FRAME_TRANSFORMS}")
        self.records = list(records)
        self.length = int(length)
        self.stride = int(stride or length)
        if self.stride < 1:
            raise ChunkError(f"chunk stride must be >= 1, got {self.stride}")
        self.transforms = tuple(transforms)
        self.seed = int(seed)
        self.label_transforms = list(label_transforms)
        split = next((i for i, t in enumerate(self.label_transforms) if t.scope == "chunk"), len(self.label_transforms))
        self._record_tf, self._chunk_tf = self.label_transforms[:split], self.label_transforms[split:]
        self._stats: dict[int, dict[str, float]] = {}
        self._labels: dict[int, np.ndarray] = {}
        self.index: list[tuple[int, int]] = []
        too_short = []
        for ri, rec in enumerate(self.records):
            if not np.all(np.isfinite(rec.ppg)):
                raise DatasetFormatError(rec.path, "NaN/inf in the PPG label")
            starts = chunk_starts(len(rec), self.length, self.stride, cover_tail)
            if not starts:
                too_short.append(f"{rec.dataset}/{rec.id} ({len(rec)} frames)")
            self.index.extend((ri, s) for s in starts)
        if too_short:
            raise ChunkError(
                f"chunk length {self.length} is longer than {len(too_short)} record(s): {', '.join(too_short[:5])}"
            )
        if fit_labels and any(t.needs_fit for t in self.label_transforms):
            self._fit_label_transforms()

    def _rng(self, ri: int, salt: int = 0) -> np.random.Generator:
        rid = self.records[ri].id
        return np.random.default_rng([self.seed, zlib.crc32(rid.encode()), salt])

    def _fit_label_transforms(self) -> None:
        """Fit transforms that learn from training labels (e.g. Lloyd-Max codebooks) in order, each on
        the chunk labels as the transforms before it leave them, with each chunk's fps."""
        for k, t in enumerate(self.label_transforms):
            if t.needs_fit:
                upto = max(0, k - len(self._record_tf))
                pairs = [self._chunk_label(i, upto) for i in range(len(self.index))]
                t.fit([y for y, _ in pairs], [fps for _, fps in pairs])

    def _chunk_label(self, i: int, upto: int | None = None) -> tuple[np.ndarray, float]:
        """Label of chunk ``i`` after the record-level transforms and the first ``upto`` (default all)
        chunk-level ones, and its record's fps."""
        ri, s = self.index[i]
        rec = self.records[ri]
        y = self._record_label(ri)[s : s + self.length]
        for j, tf in enumerate(self._chunk_tf[:upto]):
            y = tf(y, rec.fps, self._rng(ri, 1000 + i * 31 + j))
        return np.asarray(y, dtype=np.float64), float(rec.fps)

    def _record_label(self, ri: int) -> np.ndarray:
        if ri not in self._labels:
            rec = self.records[ri]
            y = np.asarray(rec.ppg, dtype=np.float64)
            for j, tf in enumerate(self._record_tf):
                y = np.asarray(tf(y, rec.fps, self._rng(ri, j)), dtype=np.float64)
                if len(y) != len(rec):
                    raise ValueError(f"label transform {tf!r} changed the label length of {rec.id}")
            self._labels[ri] = y
        return self._labels[ri]

    def stats(self, ri: int) -> dict[str, float]:
        if ri not in self._stats:
            try:
                self._stats[ri] = record_stats(self.records[ri].frames)
            except DatasetFormatError as exc:
                raise DatasetFormatError(self.records[ri].path, exc.reason) from None
        return self._stats[ri]

    def label_chunks(self):
        """Yield ``(label, fps)`` for every chunk, as training sees it, without decoding frames."""
        for i in range(len(self.index)):
            yield self._chunk_label(i)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        ri, s = self.index[i]
        rec = self.records[ri]
        frames = transform_chunk(rec.frames, s, self.length, self.transforms, self.stats(ri))
        y, _ = self._chunk_label(i)
        return {
            "frames": torch.from_numpy(frames),
            "label": torch.as_tensor(np.asarray(y, dtype=np.float32)),
            "fps": torch.tensor(float(rec.fps), dtype=torch.float32),
            "record": ri,
            "record_id": rec.id,
            "start": s,
        }
