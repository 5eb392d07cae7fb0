"""UBFC-Phys (Meziati Sabour et al., IEEE TAFFC 2021): 56 participants × 3 tasks.

Layout (reference §A.3; rPPG-Toolbox ``UBFCPHYSLoader.py``)::

    root/s1/vid_s1_T1.avi   root/s1/bvp_s1_T1.csv     (other modality files are ignored)
    root/s1/vid_s1_T2.avi   root/s1/bvp_s1_T2.csv
    ...

* video: 1024×1024 at 35 fps (EO-23121C); the container states the rate (``fps`` overrides it).
* ``bvp_sN_Tk.csv``: one BVP value per row, no header — an Empatica E4 wristband, whose BVP channel
  is sampled at 64 Hz.

Label clock. The CSV carries no timestamps; its clock is the E4's stated rate ``label_fs`` (64 Hz):
sample k is at k / 64 s, frame i at i / fps, both from the recording start. A label more than
``label_tolerance_s`` shorter than the video is an error. ``label_fs=None`` falls back to the
toolbox's index stretch (only if you know the E4 rate does not hold for your copy).

Record id ``sN_Tk``; subject ``sN``; ``meta.task`` ``T1``/``T2``/``T3`` with ``meta.task_name``
(rest, speech, arithmetic) — protocols filter on it. The toolbox's 101-video evaluation subset is an
``exclude`` list in the protocol configs (``UBFC_PHYS_TOOLBOX_EXCLUSION`` here).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from protocols.base import Record, register_dataset
from protocols.datasets._common import (
    DEFAULT_LABEL_TOLERANCE_S,
    FileLoader,
    VideoFileFrames,
    align_label,
    read_csv,
    resample_by_index,
)

TASKS = {"T1": "rest", "T2": "speech", "T3": "arithmetic"}
_VID = re.compile(r"^vid_(s\d+)_(T\d)\.avi$", re.IGNORECASE)

#: Videos dropped from the toolbox's UBFC-Phys evaluation (toolbox paper App. H; reference §A.3):
#: 101 of 168 remain.
UBFC_PHYS_TOOLBOX_EXCLUSION: dict[str, tuple[int, ...]] = {
    "T1": (3, 8, 9, 26, 28, 30, 31, 32, 33, 40, 52, 53, 54, 56),
    "T2": (1, 4, 6, 8, 9, 11, 12, 13, 14, 19, 21, 22, 25, 26, 27, 28, 31, 32, 33, 35, 38, 39, 41, 42, 45, 47, 48, 52, 53, 55),
    "T3": (5, 8, 9, 10, 13, 14, 17, 22, 25, 26, 28, 30, 32, 33, 35, 37, 40, 47, 48, 49, 50, 52, 53),
}


def toolbox_exclusion_ids() -> list[str]:
    """Record ids of :data:`UBFC_PHYS_TOOLBOX_EXCLUSION` (``s3_T1`` …), 67 in all.

    >>> len(toolbox_exclusion_ids())
    67
    """
    return [f"s{n}_{task}" for task, subjects in UBFC_PHYS_TOOLBOX_EXCLUSION.items() for n in subjects]


@register_dataset("ubfc_phys")
class UBFCPhys(FileLoader):
    layout = "root/sN/vid_sN_Tk.avi with root/sN/bvp_sN_Tk.csv"

    def __init__(
        self,
        root: str | Path | None,
        label_fs: float | None = 64.0,
        fps: float | None = None,
        label_tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S,
        count_frames: bool = False,
    ):
        if label_fs is not None and not float(label_fs) > 0:
            raise ValueError(f"label_fs must be > 0 or None, got {label_fs}")
        super().__init__(root, label_fs=label_fs, fps=fps, label_tolerance_s=label_tolerance_s, count_frames=count_frames)

    def _scan(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for d in self.root.iterdir():
            if not d.is_dir() or not re.match(r"^s\d+$", d.name):
                continue
            for f in d.iterdir():
                m = _VID.match(f.name)
                if m:
                    found[f"{m.group(1)}_{m.group(2).upper()}"] = f
        return found

    def source_files(self, rid: str) -> list[Path]:
        video: Path = self._index[rid]
        return [video, video.parent / f"bvp_{rid}.csv"]

    def _load(self, rid: str, info: Any) -> Record:
        video_path: Path = info
        subject, task = rid.split("_")
        label_path = video_path.parent / f"bvp_{rid}.csv"
        _, table = read_csv(label_path, what="label file")
        bvp = table[:, 0]
        video = VideoFileFrames(video_path, count_frames=self.count_frames)
        fps = self._fps(video, self.fps)
        meta: dict[str, Any] = {"task": task, "task_name": TASKS.get(task, "unknown")}
        if self.label_fs is None:
            ppg = resample_by_index(bvp, video.n_frames, label_path)
            meta["label_clock"] = "index"
            return Record(id=rid, subject=subject, dataset=self.name, fps=fps, frames=video, ppg=ppg, meta=meta)
        lt = np.arange(len(bvp)) / float(self.label_fs)
        ft = np.arange(video.n_frames) / fps
        al = align_label(bvp, lt, ft, where=label_path, tolerance_s=self.tolerance_s)
        if (al.start, al.stop) != (0, video.n_frames):
            video = video.subset(np.arange(al.start, al.stop))
        meta.update(al.meta(), label_clock=f"rate {self.label_fs} Hz")
        return Record(id=rid, subject=subject, dataset=self.name, fps=fps, frames=video, ppg=al.ppg, meta=meta)
