"""UBFC-rPPG (Bobbia et al., Pattern Recognition Letters 2019), both releases.

Layout (reference §A.1; rPPG-Toolbox ``UBFCrPPGLoader.py``)::

    root/
      subject1/vid.avi  subject1/ground_truth.txt     DATASET_2 ("simple", 42 subjects)
      ...
      <name>/vid.avi    <name>/gtdump.xmp             DATASET_1 ("realistic")

* ``vid.avi``: uncompressed 640×480 RGB at 30 fps (the container states the rate).
* ``ground_truth.txt`` (DATASET_2): three whitespace-separated rows — PPG waveform, HR (bpm) and
  timestamps in seconds, one sample per video frame.
* ``gtdump.xmp`` (DATASET_1): CSV rows ``time_ms, HR, SpO2, PPG``.

Label clock. ``clock="timestamps"`` (default) interpolates the PPG from its own timestamps (row 3
of ``ground_truth.txt``, column 1 of ``gtdump.xmp``) onto the frame times ``i / fps``, taking the first
label sample as video time 0 (the datasets record both streams from one start trigger; they give no
offset between them). ``clock="index"`` reproduces the toolbox (DATASET_2 label used one sample per
frame; DATASET_1 stretched by sample index) — it needs equal lengths for DATASET_2.

``variant``: ``auto`` (per folder, by which label file is present), ``DATASET_2`` or ``DATASET_1``.
Record ids are the folder names (``subject12``); each subject has one video, so subject = id.
Quirks: the toolbox lists folders in filesystem order; this loader sorts naturally (subject2 <
subject10) and protocols choose the order explicitly (the RhythmMamba/RhythmFormer forks sort
lexicographically). subject33 is a frequently truncated download: decoding it fails with an error
naming the file. Dataset readme: never show the faces of DATASET_2 subjects 21 and 27.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from protocols.base import DatasetFormatError, Record, register_dataset
from protocols.datasets._common import (
    DEFAULT_LABEL_TOLERANCE_S,
    FileLoader,
    VideoFileFrames,
    align_label,
    check_finite,
    frame_times,
    read_csv,
    require_file,
    resample_by_index,
)

VARIANTS = ("auto", "DATASET_2", "DATASET_1")
_LABEL = {"DATASET_2": "ground_truth.txt", "DATASET_1": "gtdump.xmp"}


def read_ground_truth_txt(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """DATASET_2 ``ground_truth.txt`` → (ppg, hr or None, timestamps in s or None)."""
    require_file(path, "label file ground_truth.txt")
    rows = []
    for k, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(np.array([float(v) for v in line.split()], dtype=np.float64))
        except ValueError as e:
            raise DatasetFormatError(path, f"line {k + 1} is not a row of numbers: {e}") from None
    if not rows:
        raise DatasetFormatError(path, "empty label file")
    ppg = rows[0]
    for name, r in zip(("HR row", "timestamp row"), rows[1:3], strict=False):
        if len(r) != len(ppg):
            raise DatasetFormatError(path, f"{name} has {len(r)} values but the PPG row has {len(ppg)}")
    hr = rows[1] if len(rows) > 1 else None
    ts = rows[2] if len(rows) > 2 else None
    return ppg, hr, ts


@register_dataset("ubfc_rppg")
class UBFCrPPG(FileLoader):
    layout = "root/<subject>/vid.avi with ground_truth.txt (DATASET_2) or gtdump.xmp (DATASET_1)"

    def __init__(
        self,
        root: str | Path | None,
        variant: str = "auto",
        clock: str = "timestamps",
        fps: float | None = None,
        label_tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S,
        count_frames: bool = False,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"ubfc_rppg variant must be one of {VARIANTS}, got {variant!r}")
        if clock not in ("timestamps", "index"):
            raise ValueError(f"ubfc_rppg clock must be timestamps|index, got {clock!r}")
        super().__init__(root, variant=variant, clock=clock, fps=fps, label_tolerance_s=label_tolerance_s, count_frames=count_frames)

    def _scan(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for d in self.root.iterdir():
            if not d.is_dir() or not (d / "vid.avi").is_file():
                continue
            if self.variant == "auto":
                kind = "DATASET_2" if (d / _LABEL["DATASET_2"]).exists() else "DATASET_1" if (d / _LABEL["DATASET_1"]).exists() else None
            else:
                kind = self.variant
            found[d.name] = (d, kind)
        return found

    def _load(self, rid: str, info: Any) -> Record:
        folder, kind = info
        if kind is None:
            raise DatasetFormatError(folder / _LABEL["DATASET_2"], "label file missing (neither ground_truth.txt nor gtdump.xmp)")
        label_path = folder / _LABEL[kind]
        video = VideoFileFrames(folder / "vid.avi", count_frames=self.count_frames)
        fps = self._fps(video, self.fps)
        meta: dict[str, Any] = {"variant": kind}
        if kind == "DATASET_2":
            ppg, hr, ts = read_ground_truth_txt(label_path)
            if hr is not None:
                meta["device_hr_mean_bpm"] = float(np.nanmean(hr))
        else:
            _, table = read_csv(label_path, header=None)
            if table.shape[1] < 4:
                raise DatasetFormatError(label_path, f"expected 4 columns (time_ms, HR, SpO2, PPG), found {table.shape[1]}")
            ppg, ts = table[:, 3], table[:, 0] / 1000.0
            meta["device_hr_mean_bpm"] = float(np.nanmean(table[:, 1]))
        check_finite(ppg, label_path)
        if self.clock == "index" or ts is None:
            if self.clock == "timestamps":
                raise DatasetFormatError(label_path, "no timestamp row (row 3); set clock=index to assume one sample per frame")
            if kind == "DATASET_2" and len(ppg) != video.n_frames:
                raise DatasetFormatError(label_path, f"clock=index needs one PPG sample per frame: {len(ppg)} samples vs {video.n_frames} frames")
            signal = ppg if len(ppg) == video.n_frames else resample_by_index(ppg, video.n_frames, label_path)
            meta["label_clock"] = "index"
            return Record(id=rid, subject=rid, dataset=self.name, fps=fps, frames=video, ppg=signal, meta=meta)
        ts = check_finite(ts, label_path, "label timestamps")
        al = align_label(ppg, ts - ts[0], frame_times(video.n_frames, fps), where=label_path, tolerance_s=self.tolerance_s)
        frames = video if (al.start, al.stop) == (0, video.n_frames) else video.subset(np.arange(al.start, al.stop))
        meta.update(al.meta(), label_clock="timestamps")
        return Record(id=rid, subject=rid, dataset=self.name, fps=fps, frames=frames, ppg=al.ppg, meta=meta)
