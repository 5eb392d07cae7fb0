"""Face boxes for preprocessing: OpenCV's Haar cascade on the first or every N-th frame (median box),
enlargement about the box centre, and the block size frames are streamed in. Used by
:mod:`protocols.preprocess`, which re-exports these names.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from protocols.base import Record
    from protocols.preprocess import PreprocessConfig

_CASCADES: dict[str, Any] = {}


def haar_cascade(name: str = "default") -> Any:
    """OpenCV's frontal-face Haar cascade ``haarcascade_frontalface_<name>.xml`` (``default``, or ``alt``;
    both ship with opencv-python), loaded once per process."""
    if name not in _CASCADES:
        path = os.path.join(cv2.data.haarcascades, f"haarcascade_frontalface_{name}.xml")
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():  # pragma: no cover - broken OpenCV install
            raise RuntimeError(f"could not load Haar cascade {path}")
        _CASCADES[name] = cascade
    return _CASCADES[name]


def detect_face(frame: np.ndarray, fallback_alt: bool = False) -> tuple[int, int, int, int] | None:
    """Widest Haar-cascade face box (x, y, w, h) in an RGB uint8 frame, or None.

    ``fallback_alt``: where the default cascade finds nothing, try the ``alt`` cascade (``predict``
    does; benchmark preprocessing keeps the toolbox's default cascade alone)."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    for name in ("default", "alt") if fallback_alt else ("default",):
        faces = haar_cascade(name).detectMultiScale(gray)
        if len(faces):
            x, y, w, h = max(faces, key=lambda b: b[2])
            return int(x), int(y), int(w), int(h)
    return None


def enlarge_box(box: tuple[int, int, int, int], coef: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Scale a box about its centre and clip it to the frame → (x0, y0, x1, y1).

    Unlike the toolbox, the enlarged box stays centred on the face (the toolbox clamps the corner at 0
    without shifting, which makes boxes near the border off-centre).
    """
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    nw, nh = w * coef, h * coef
    x0 = int(round(max(0.0, cx - nw / 2)))
    y0 = int(round(max(0.0, cy - nh / 2)))
    x1 = int(round(min(float(width), cx + nw / 2)))
    y1 = int(round(min(float(height), cy + nh / 2)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"face box {box} is outside the {width}x{height} frame")
    return x0, y0, x1, y1


#: Upper bound on the bytes of one decoded block of frames (uint8 RGB).
BLOCK_BYTES = 8 * 1024**2


def block_frames(height: int, width: int, max_block: int = 64) -> int:
    """Frames per streamed block so that a block stays under :data:`BLOCK_BYTES` (≥ 1, ≤ ``max_block``).

    >>> block_frames(480, 640), block_frames(1024, 1024), block_frames(72, 72)
    (9, 2, 64)
    """
    return max(1, min(max_block, BLOCK_BYTES // max(1, height * width * 3)))


def find_face_box(record: Record, cfg: PreprocessConfig) -> tuple[tuple[int, int, int, int] | None, dict[str, Any]]:
    """The (x, y, w, h) box to crop for the whole record and a note of how it was found."""
    h, w = record.frames.height, record.frames.width
    if cfg.use_known_box and record.meta.get("face_box") is not None:
        return tuple(int(v) for v in record.meta["face_box"]), {"face_source": "known"}  # type: ignore[return-value]
    if cfg.detection == "none":
        return (0, 0, w, h), {"face_source": "full_frame_configured"}
    boxes: list[tuple[int, int, int, int]] = []
    n_tried = 0
    step = 1 if cfg.detection == "first" else max(1, cfg.detect_every)
    idx = 0
    blk = 1 if cfg.detection == "first" else block_frames(h, w)
    for block in record.frames.iter_blocks(blk):
        for i in range(len(block)):
            if (idx + i) % step == 0:
                n_tried += 1
                b = detect_face(block[i])
                if b is not None:
                    boxes.append(b)
                if cfg.detection == "first":
                    break
        idx += len(block)
        if cfg.detection == "first":
            break
    note: dict[str, Any] = {"face_detections": len(boxes), "face_detection_attempts": n_tried}
    if boxes:
        med = np.median(np.asarray(boxes, dtype=np.float64), axis=0)
        note["face_source"] = "haar_first" if cfg.detection == "first" else "haar_median"
        return tuple(int(round(v)) for v in med), note  # type: ignore[return-value]
    note["face_source"] = "none"
    return None, note
