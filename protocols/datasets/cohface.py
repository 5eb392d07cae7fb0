"""COHFACE (Heusch et al., Idiap 2017): 40 subjects × 4 sessions of 1-min, 20 fps compressed video.

Layout (reference §A.7; ``bioidiap/bob.db.cohface``; rPPG-Toolbox ``COHFACELoader.py``)::

    root/1/0/data.avi   root/1/0/data.hdf5
    root/1/1/…          (subject 1–40, session 0–3)

``data.hdf5`` holds the datasets ``pulse`` (BVP), ``respiration`` and ``time`` (seconds, one per
sample; the physiological recorder runs at ≈ 256 Hz).

Label clock: the file's own ``time`` dataset, relative to its first sample, which is taken as video
time 0 (the dataset gives no offset between the two recorders). Without ``time``, the stated rate
``label_fs`` (256 Hz) is used. Frames are at i / fps with fps from the container (20) unless set.
A label shorter than the video by more than ``label_tolerance_s`` is an error.

Quirk: RhythmFormer's COHFACE comparison table notes that the first 30 frames of subjects 17–40 are
corrupted. ``drop_corrupted_start=True`` drops them (frames 30… keep their original times, so the
label stays aligned). Record id ``<subject>_<session>``; ``meta.video_id`` = ``int(f"{subject}0{session}")``
as in the toolbox and the comparison table; official bob.db.cohface protocols (train/dev/test ×
all/clean) are session lists and not encoded here.
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
    require_file,
)
from protocols.datasets._common import h5py_module as _h5py

CORRUPTED_START_FRAMES = 30
CORRUPTED_START_SUBJECTS = range(17, 41)


@register_dataset("cohface")
class COHFACE(FileLoader):
    layout = "root/<subject>/<session>/data.avi with data.hdf5 (pulse, time)"

    def __init__(
        self,
        root: str | Path | None,
        fps: float | None = None,
        label_fs: float = 256.0,
        drop_corrupted_start: bool = False,
        label_tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S,
        count_frames: bool = False,
    ):
        if not float(label_fs) > 0:
            raise ValueError(f"cohface label_fs must be > 0, got {label_fs}")
        super().__init__(
            root, fps=fps, label_fs=float(label_fs), drop_corrupted_start=drop_corrupted_start,
            label_tolerance_s=label_tolerance_s, count_frames=count_frames,
        )

    def _scan(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for subj in self.root.iterdir():
            if not (subj.is_dir() and subj.name.isdigit()):
                continue
            for sess in subj.iterdir():
                if sess.is_dir() and sess.name.isdigit() and (sess / "data.avi").is_file():
                    found[f"{int(subj.name)}_{int(sess.name)}"] = sess
        return found

    def _load(self, rid: str, info: Any) -> Record:
        folder: Path = info
        subject, session = (int(v) for v in rid.split("_"))
        label_path = require_file(folder / "data.hdf5", "label file")
        h5py = _h5py()
        try:
            f = h5py.File(label_path, "r")
        except OSError as e:
            raise DatasetFormatError(label_path, f"not a readable HDF5 file: {e}") from None
        with f:
            if "pulse" not in f:
                raise DatasetFormatError(label_path, f"dataset 'pulse' missing (found {sorted(f.keys())})")
            pulse = np.asarray(f["pulse"][()], dtype=np.float64).reshape(-1)
            times = np.asarray(f["time"][()], dtype=np.float64).reshape(-1) if "time" in f else None
        check_finite(pulse, label_path, "pulse")
        if times is None:
            lt, clock = np.arange(len(pulse)) / self.label_fs, f"rate {self.label_fs} Hz"
        else:
            if len(times) != len(pulse):
                raise DatasetFormatError(label_path, f"'time' has {len(times)} values but 'pulse' has {len(pulse)}")
            times = check_finite(times, label_path, "time")
            lt, clock = times - times[0], "timestamps"
        video = VideoFileFrames(folder / "data.avi", count_frames=self.count_frames)
        fps = self._fps(video, self.fps)
        first = CORRUPTED_START_FRAMES if self.drop_corrupted_start and subject in CORRUPTED_START_SUBJECTS else 0
        if first >= video.n_frames:
            raise DatasetFormatError(video.path, f"only {video.n_frames} frames; cannot drop the first {first}")
        ft = np.arange(first, video.n_frames) / fps
        al = align_label(pulse, lt, ft, where=label_path, tolerance_s=self.tolerance_s)
        if (first + al.start, first + al.stop) != (0, video.n_frames):
            video = video.subset(np.arange(first + al.start, first + al.stop))
        meta = {"session": session, "video_id": int(f"{subject}0{session}"), "label_clock": clock, "dropped_start_frames": first, **al.meta()}
        return Record(id=rid, subject=str(subject), dataset=self.name, fps=fps, frames=video, ppg=al.ppg, meta=meta)
