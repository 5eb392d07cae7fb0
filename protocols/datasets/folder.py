"""``folder``: your own recordings — one video file per record plus a CSV with its contact PPG.

Expected layout (one level of subject folders is optional)::

    root/
      session1.avi   session1.csv          record "session1", subject "session1"
      alice/
        rest.mp4     rest.csv              record "alice__rest", subject "alice"
        run.mp4      run.csv               record "alice__run",  subject "alice"

* Video: any container/codec OpenCV's FFmpeg backend decodes, with extension in ``video_exts``
  (default .avi .mp4 .mkv .mov .m4v .webm). Prefer lossless codecs (FFV1, PNG, raw): lossy
  compression removes much of the pulse signal. The frame rate is read from the container unless
  ``fps`` is set; a container without a frame rate and no ``fps`` is an error.
* CSV: same name as the video with ``.csv``, comma-separated, **one header row**, one row per PPG
  sample. Column ``ppg`` (``ppg_column``) holds the signal; column ``time`` (``time_column``), if
  present, the sample time in ``time_unit`` (s, ms, us or ns; absolute Unix times are fine). Example::

      time,ppg
      0.000,512
      0.016,515
      ...

Label clock: with a time column, the PPG is interpolated from its timestamps onto the frame times
``i / fps``; without one, the samples are taken to be evenly spaced at ``ppg_fs`` Hz (which must then be
set — otherwise the CSV is rejected). The first PPG sample is at video time ``label_offset_s``
(default 0: both start together; positive when the PPG started after the video). Frames before the
first / after the last PPG sample are trimmed; if more than ``label_tolerance_s`` of video would be
trimmed, loading fails naming the CSV.
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
    column,
    read_csv,
)

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm")


@register_dataset("folder")
class Folder(FileLoader):
    layout = "root/<name>.<video ext> + root/<name>.csv (header with a 'ppg' column), optionally inside one level of subject folders"

    def __init__(
        self,
        root: str | Path | None,
        ppg_fs: float | None = None,
        fps: float | None = None,
        ppg_column: str = "ppg",
        time_column: str | None = "time",
        time_unit: str = "s",
        label_offset_s: float = 0.0,
        video_exts: tuple[str, ...] | list[str] = VIDEO_EXTS,
        label_tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S,
        count_frames: bool = False,
    ):
        if time_unit not in TIME_UNITS:
            raise ValueError(f"folder time_unit must be one of {sorted(TIME_UNITS)}, got {time_unit!r}")
        if ppg_fs is not None and not float(ppg_fs) > 0:
            raise ValueError(f"folder ppg_fs must be > 0 or null, got {ppg_fs}")
        exts = [e.lower() if e.startswith(".") else f".{e.lower()}" for e in video_exts]
        super().__init__(
            root, ppg_fs=ppg_fs, fps=fps, ppg_column=ppg_column, time_column=time_column, time_unit=time_unit,
            label_offset_s=float(label_offset_s), video_exts=exts, label_tolerance_s=label_tolerance_s,
            count_frames=count_frames,
        )

    def _videos(self, folder: Path) -> list[Path]:
        return [f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in self.video_exts]

    def _scan(self) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def add(rid: str, subject: str, video: Path) -> None:
            if rid in found:
                raise DatasetFormatError(video, f"two videos map to record {rid!r} (also {found[rid][1]})")
            found[rid] = (subject, video)

        for v in self._videos(self.root):
            add(v.stem, v.stem, v)
        for d in self.root.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                for v in self._videos(d):
                    add(f"{d.name}__{v.stem}", d.name, v)
        return found

    def source_files(self, rid: str) -> list[Path]:
        _, video = self._index[rid]
        return [video, video.with_suffix(".csv")]

    def _load(self, rid: str, info: Any) -> Record:
        subject, video_path = info
        label_path = video_path.with_suffix(".csv")
        names, table = read_csv(label_path, header=True)
        lower = [n.lower() for n in names or []]
        if self.ppg_column.lower() not in lower:
            raise DatasetFormatError(label_path, f"no {self.ppg_column!r} column in header {names}")
        ppg = column(names, table, self.ppg_column, 0, label_path)
        if self.time_column is not None and self.time_column.lower() in lower:
            t = column(names, table, self.time_column, 0, label_path) * TIME_UNITS[self.time_unit]
            if not np.all(np.isfinite(t)):
                raise DatasetFormatError(label_path, f"column {self.time_column!r} contains NaN/empty values")
            lt, clock = t - t[0], f"timestamps ({self.time_column}, {self.time_unit})"
        elif self.ppg_fs is not None:
            lt, clock = np.arange(len(ppg)) / float(self.ppg_fs), f"rate {self.ppg_fs} Hz"
        else:
            raise DatasetFormatError(label_path, f"no {self.time_column!r} column and no ppg_fs configured: the PPG has no clock")
        video = VideoFileFrames(video_path, count_frames=self.count_frames)
        fps = self._fps(video, self.fps)
        al = align_label(ppg, lt + self.label_offset_s, np.arange(video.n_frames) / fps, where=label_path, tolerance_s=self.tolerance_s)
        if (al.start, al.stop) != (0, video.n_frames):
            video = video.subset(np.arange(al.start, al.stop))
        meta = {"video": video_path.name, "label_clock": clock, **al.meta()}
        return Record(id=rid, subject=subject, dataset=self.name, fps=fps, frames=video, ppg=al.ppg, meta=meta)
