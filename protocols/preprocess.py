"""Face crop + resize into a uint8 memmap cache, shared by every method.

``cache/<loader key>/<preprocess key>/<record id>/{frames.npy, ppg.npy, meta.json}``

* frames are streamed from the record's :class:`~protocols.base.FrameSource` block by block, cropped
  and resized (``cv2.INTER_AREA``) straight into a ``.npy`` memmap: the whole video is never in
  memory and never as float64;
* every record is written into a temporary folder that is renamed into place only when complete,
  so an interrupted run leaves no half-written record behind; a rerun skips finished records and
  clears stale temporary folders;
* the face box comes from ``meta["face_box"]`` when the loader knows it (synthetic data), else from
  OpenCV's Haar cascade on the first frame (toolbox default) or on every N-th frame with a
  coordinate-wise median box; it is enlarged ×1.5 by default (toolbox ``LARGE_BOX_COEF``).
  No-face policy: ``error`` / ``full_frame`` / ``skip_record``, recorded in each record's meta.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from protocols.base import DatasetFormatError, Loader, Record


class NoFaceError(DatasetFormatError):
    """No face was found and the no-face policy is ``error``."""


@dataclass(frozen=True)
class PreprocessConfig:
    size: int = 72
    box_coef: float = 1.5
    detection: str = "first"  # first | every | none
    detect_every: int = 30
    use_known_box: bool = True
    no_face: str = "error"  # error | full_frame | skip_record

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"preprocess size must be >= 8, got {self.size}")
        if self.detection not in ("first", "every", "none"):
            raise ValueError(f"detection must be first|every|none, got {self.detection!r}")
        if self.no_face not in ("error", "full_frame", "skip_record"):
            raise ValueError(f"no_face must be error|full_frame|skip_record, got {self.no_face!r}")
        if self.box_coef <= 0:
            raise ValueError(f"box_coef must be > 0, got {self.box_coef}")

    def key(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return f"s{self.size}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class CachedRecord:
    """A preprocessed record: frames (T, S, S, 3) uint8 memmap, ppg (T,) float32 per frame."""

    id: str
    subject: str
    dataset: str
    fps: float
    frames: np.ndarray
    ppg: np.ndarray
    meta: dict[str, Any]
    path: Path

    def __len__(self) -> int:
        return len(self.ppg)


# -- face boxes ----------------------------------------------------------------------------------
_CASCADE: Any = None


def _cascade() -> Any:
    global _CASCADE
    if _CASCADE is None:
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        _CASCADE = cv2.CascadeClassifier(path)
        if _CASCADE.empty():  # pragma: no cover - broken OpenCV install
            raise RuntimeError(f"could not load Haar cascade {path}")
    return _CASCADE


def detect_face(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """Widest Haar-cascade face box (x, y, w, h) in an RGB uint8 frame, or None."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    faces = _cascade().detectMultiScale(gray)
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda b: b[2])
    return int(x), int(y), int(w), int(h)


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
    for block in record.frames.iter_blocks(64):
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


# -- cache ---------------------------------------------------------------------------------------
def record_dir(cache_root: str | Path, loader: Loader, cfg: PreprocessConfig, record_id: str) -> Path:
    return Path(cache_root) / loader.key() / cfg.key() / record_id


def load_cached(path: str | Path) -> CachedRecord:
    """Open a finished cache folder (frames memory-mapped read-only)."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise DatasetFormatError(path, "not a finished cache record (meta.json missing)")
    meta = json.loads(meta_file.read_text())
    frames = np.load(path / "frames.npy", mmap_mode="r")
    ppg = np.load(path / "ppg.npy")
    return CachedRecord(
        id=meta["id"], subject=meta["subject"], dataset=meta["dataset"], fps=float(meta["fps"]),
        frames=frames, ppg=ppg, meta=meta.get("meta", {}), path=path,
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def preprocess_record(record: Record, cfg: PreprocessConfig, out_dir: str | Path) -> CachedRecord | None:
    """Crop/resize one record into ``out_dir`` atomically; returns None when skipped (no face)."""
    out_dir = Path(out_dir)
    if (out_dir / "meta.json").is_file():
        return load_cached(out_dir)
    box, note = find_face_box(record, cfg)
    h, w = record.frames.height, record.frames.width
    if box is None:
        if cfg.no_face == "error":
            raise NoFaceError(f"record {record.dataset}/{record.id}", "no face found (no_face=error)")
        if cfg.no_face == "skip_record":
            return None
        box = (0, 0, w, h)
        note["face_source"] = "full_frame_fallback"
    x0, y0, x1, y1 = enlarge_box(box, cfg.box_coef, h, w) if note["face_source"] != "full_frame_configured" else (0, 0, w, h)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        t = len(record.frames)
        frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8, shape=(t, cfg.size, cfg.size, 3))
        i = 0
        for block in record.frames.iter_blocks(64):
            if block.dtype != np.uint8 or block.ndim != 4:
                raise DatasetFormatError(f"record {record.dataset}/{record.id}", f"frames must be uint8 (t,H,W,3), got {block.dtype} {block.shape}")
            for frame in block:
                crop = frame[y0:y1, x0:x1]
                frames[i] = cv2.resize(crop, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
                i += 1
        if i != t:
            raise DatasetFormatError(f"record {record.dataset}/{record.id}", f"video yielded {i} frames, expected {t}")
        frames.flush()
        del frames
        np.save(tmp / "ppg.npy", np.asarray(record.ppg, dtype=np.float32))
        meta = {
            "id": record.id, "subject": record.subject, "dataset": record.dataset, "fps": float(record.fps),
            "n_frames": t, "crop_box": [x0, y0, x1, y1], "source_size": [h, w],
            "preprocess": dataclasses.asdict(cfg), **note, "meta": _jsonable(dict(record.meta)),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if out_dir.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_cached(out_dir)


def preprocess(
    loader: Loader,
    cfg: PreprocessConfig,
    cache_root: str | Path,
    records: Iterable[Record] | None = None,
    progress: bool = True,
) -> Iterator[CachedRecord]:
    """Preprocess (or reuse from the cache) every record of ``loader``; yields cached records."""
    from tqdm.auto import tqdm

    base = Path(cache_root) / loader.key() / cfg.key()
    if base.exists():
        for stale in base.glob(".*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    recs = records if records is not None else loader.records()
    for rec in tqdm(recs, desc=f"preprocess {loader.key()}", disable=not progress, leave=False):
        cached = preprocess_record(rec, cfg, base / rec.id)
        if cached is not None:
            yield cached
