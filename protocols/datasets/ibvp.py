"""iBVP (Joshi & Cho, Electronics 2024): 33 participants × 4 conditions, 3-min RGB + thermal + ear PPG.

Layout (reference §A.6; ``PhysiologicAILab/iBVP-Dataset`` README; rPPG-Toolbox ``iBVPLoader.py``)::

    root/p01_a/p01_a_rgb/*.bmp        RGB frames, 640×480, 30 fps (file names sort in frame order)
    root/p01_a/p01_a_t/*.raw          thermal (ignored by this loader)
    root/p01_a/p01_a_bvp.csv          header row; BVP, SQPhysMD, SQ1, SQ2, Perfusion_Value

* ``BVP`` is the filtered PPG already down-sampled to 30 Hz; the SQ columns are signal-quality
  values in [0, 1] per sample (SQ1/SQ2 manual, per 0.5-s segment expanded to samples).
* Confidential no-media participants (p08 p10 p13 p16 p29 p31 p33) may be used for training and
  evaluation but never shown.

Label clock: the stated 30 Hz (``label_fs``), sample k at k / 30 s, frame i at i / fps; a label
shorter than the video by more than ``label_tolerance_s`` is an error. Columns are found by header
name (``BVP``; quality column ``quality_column``, default ``SQ2`` as the toolbox's column 3), falling
back to the toolbox's positions (0 and 3) when the header names differ.

Signal quality (``quality_policy``):

* ``keep`` (default): every frame is kept; the per-frame quality is stored in
  ``meta.signal_quality`` (list, one value per frame) with ``meta.sq_mean`` and ``meta.sq_low_fraction``
  (share of frames with SQ ≤ ``quality_threshold``), so evaluation can weight or mask them.
* ``drop``: the toolbox's behaviour — frames (and their labels) with SQ ≤ ``quality_threshold``
  (0.3) are deleted before preprocessing. The remaining frames are concatenated: the record then has
  time gaps (``meta.sq_dropped_frames``, ``meta.has_gaps``), and chunks may straddle them — a
  deliberate parity option, not a recommendation.

Record id ``p01_a``; subject ``p01``; ``meta.condition`` a–d with ``meta.condition_name``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from protocols.base import DatasetFormatError, Record, register_dataset
from protocols.datasets._common import (
    DEFAULT_LABEL_TOLERANCE_S,
    FileLoader,
    ImageFolderFrames,
    align_label,
    column,
    read_csv,
    sorted_naturally,
)

CONDITIONS = {"a": "rest_slow_breathing", "b": "easy_math", "c": "difficult_math", "d": "head_movement"}
CONFIDENTIAL = ("p08", "p10", "p13", "p16", "p29", "p31", "p33")
_NAME = re.compile(r"^(p\d+)_([a-z])$", re.IGNORECASE)


@register_dataset("ibvp")
class IBVP(FileLoader):
    layout = "root/pII_x/pII_x_rgb/*.bmp with root/pII_x/pII_x_bvp.csv"

    def __init__(
        self,
        root: str | Path | None,
        fps: float = 30.0,
        label_fs: float = 30.0,
        quality_column: str = "SQ2",
        quality_policy: str = "keep",
        quality_threshold: float = 0.3,
        label_tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S,
    ):
        if quality_policy not in ("keep", "drop"):
            raise ValueError(f"ibvp quality_policy must be keep|drop, got {quality_policy!r}")
        if not (float(fps) > 0 and float(label_fs) > 0):
            raise ValueError(f"ibvp fps and label_fs must be > 0, got {fps}, {label_fs}")
        super().__init__(
            root, fps=float(fps), label_fs=float(label_fs), quality_column=quality_column, quality_policy=quality_policy,
            quality_threshold=float(quality_threshold), label_tolerance_s=label_tolerance_s,
        )

    def _scan(self) -> dict[str, Any]:
        return {d.name: d for d in self.root.iterdir() if d.is_dir() and _NAME.match(d.name)}

    def _load(self, rid: str, info: Any) -> Record:
        folder: Path = info
        subject, cond = _NAME.match(rid).groups()  # type: ignore[union-attr]
        label_path = folder / f"{rid}_bvp.csv"
        names, table = read_csv(label_path, header=True)
        bvp = column(names, table, "BVP", 0, label_path)
        sq = column(names, table, self.quality_column, 3, label_path)
        rgb = folder / f"{rid}_rgb"
        if not rgb.is_dir():
            raise DatasetFormatError(rgb, "RGB frame folder missing")
        bmps = sorted_naturally([p for p in rgb.iterdir() if p.suffix.lower() == ".bmp"])
        if not bmps:
            raise DatasetFormatError(rgb, "no BMP frames")
        lt = np.arange(len(bvp)) / self.label_fs
        ft = np.arange(len(bmps)) / self.fps
        al = align_label(bvp, lt, ft, where=label_path, tolerance_s=self.tolerance_s)
        sq_frames = align_label(sq, lt, ft, where=label_path, tolerance_s=self.tolerance_s).ppg
        paths = bmps[al.start : al.stop]
        ppg = al.ppg
        low = sq_frames <= self.quality_threshold
        meta: dict[str, Any] = {
            "condition": cond.lower(), "condition_name": CONDITIONS.get(cond.lower(), "unknown"),
            "confidential_no_media": subject.lower() in CONFIDENTIAL, "label_clock": f"rate {self.label_fs} Hz",
            "sq_mean": float(sq_frames.mean()), "sq_low_fraction": float(low.mean()), **al.meta(),
        }
        if self.quality_policy == "drop":
            keep = ~low
            if not keep.any():
                raise DatasetFormatError(label_path, f"every frame has signal quality ≤ {self.quality_threshold} (quality_policy=drop)")
            paths = [p for p, k in zip(paths, keep, strict=True) if k]
            ppg, sq_frames = ppg[keep], sq_frames[keep]
            meta.update(sq_dropped_frames=int(low.sum()), has_gaps=bool(low.any()))
        meta["signal_quality"] = np.round(sq_frames, 4).astype(np.float32)
        return Record(id=rid, subject=subject.lower(), dataset=self.name, fps=self.fps, frames=ImageFolderFrames(paths), ppg=ppg, meta=meta)
