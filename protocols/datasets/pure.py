"""PURE (Stricker et al., RO-MAN 2014): 10 persons × 6 setups, lossless PNG frames + pulse oximeter.

Layout (reference §A.2; rPPG-Toolbox ``PURELoader.py``)::

    root/01-01/01-01.json
    root/01-01/01-01/Image<unix time ns>.png      one PNG per frame, 640×480, ~30 Hz
    ...                                            distributed copies hold 59 folders (06-02 is missing)

``XX-YY.json``: ``/FullPackage`` is a list of ``{Timestamp (ns), Value: {waveform, pulseRate,
o2saturation, ...}}`` at ~60 Hz (pulox CMS50E), ``/Image`` a list of ``{Timestamp}``, one per frame.

Label clock. Both streams carry Unix timestamps in nanoseconds on the same clock, so the waveform is
interpolated at each frame's own capture time (from the PNG name, or ``/Image`` if names carry no
number) — no assumption that the streams start together. The toolbox instead stretches the ~2×
longer waveform over the frames by index; with timestamps a known sine keeps its phase.
``fps``: the mean frame rate measured from the frame timestamps unless set.

Record id ``XX-YY``; subject ``XX`` without leading zero ("1"…"10"); ``meta.setup`` 1–6 with
``meta.setup_name`` (steady, talking, slow/fast translation, small/medium rotation).
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
    read_json,
    sorted_naturally,
)

SETUPS = {1: "steady", 2: "talking", 3: "slow_translation", 4: "fast_translation", 5: "small_rotation", 6: "medium_rotation"}
_NAME = re.compile(r"^(\d{2})-(\d{2})$")
_STAMP = re.compile(r"(\d{9,})")


@register_dataset("pure")
class PURE(FileLoader):
    layout = "root/XX-YY/XX-YY.json and root/XX-YY/XX-YY/Image<timestamp_ns>.png"

    def __init__(self, root: str | Path | None, fps: float | None = None, label_tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S):
        super().__init__(root, fps=fps, label_tolerance_s=label_tolerance_s)

    def _scan(self) -> dict[str, Any]:
        return {d.name: d for d in self.root.iterdir() if d.is_dir() and _NAME.match(d.name)}

    def _load(self, rid: str, info: Any) -> Record:
        folder: Path = info
        json_path = folder / f"{rid}.json"
        data = read_json(json_path)
        try:
            package = data["/FullPackage"]
            label_ns = np.array([float(p["Timestamp"]) for p in package], dtype=np.float64)
            wave = np.array([float(p["Value"]["waveform"]) for p in package], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetFormatError(json_path, f"expected /FullPackage[].Timestamp and .Value.waveform: {type(e).__name__}: {e}") from None
        img_dir = folder / rid
        if not img_dir.is_dir():
            raise DatasetFormatError(img_dir, "frame folder missing")
        pngs = sorted_naturally([p for p in img_dir.iterdir() if p.suffix.lower() == ".png"])
        if not pngs:
            raise DatasetFormatError(img_dir, "no PNG frames")
        stamps = [_STAMP.search(p.stem) for p in pngs]
        if all(stamps):
            frame_ns = np.array([float(m.group(1)) for m in stamps if m], dtype=np.float64)
        else:
            try:
                frame_ns = np.array([float(p["Timestamp"]) for p in data["/Image"]], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise DatasetFormatError(json_path, "frame timestamps neither in the PNG names nor in /Image") from None
            if len(frame_ns) != len(pngs):
                raise DatasetFormatError(json_path, f"/Image lists {len(frame_ns)} timestamps for {len(pngs)} PNG files")
        if np.any(np.diff(frame_ns) <= 0):
            raise DatasetFormatError(img_dir, "frame timestamps are not strictly increasing")
        t0 = frame_ns[0]
        ft = (frame_ns - t0) / 1e9
        lt = (label_ns - t0) / 1e9
        if self.fps is not None:
            fps = float(self.fps)
            if not fps > 0:
                raise DatasetFormatError(img_dir, f"configured fps must be > 0, got {self.fps}")
        elif len(ft) > 1 and ft[-1] > 0:
            fps = (len(ft) - 1) / ft[-1]
        else:
            raise DatasetFormatError(img_dir, "cannot measure the frame rate from a single frame; set fps")
        al = align_label(wave, lt, ft, where=json_path, tolerance_s=self.tolerance_s)
        frames = ImageFolderFrames(pngs[al.start : al.stop])
        setup = int(_NAME.match(rid).group(2))  # type: ignore[union-attr]
        meta = {"setup": setup, "setup_name": SETUPS.get(setup, "unknown"), "label_clock": "timestamps", **al.meta()}
        subject = str(int(rid[:2]))
        return Record(id=rid, subject=subject, dataset=self.name, fps=fps, frames=frames, ppg=al.ppg, meta=meta)
