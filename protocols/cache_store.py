"""The preprocessing cache on disk: one finished record per folder, published atomically under a lock.

``cache/<loader key>/<preprocess key>/<record id>/{frames.npy, ppg.npy, meta.json}``. A record is
written into a hidden temporary folder and renamed into place when complete (:func:`_publish`); a
finished record is reused only if its ``source_fingerprint`` matches (:func:`_finished`); one
``filelock`` per record (:func:`_record_lock`). Used by :mod:`protocols.preprocess`, which re-exports
these names.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocols.base import DatasetFormatError, check_record_id


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


def _child(base: Path, record_id: str) -> Path:
    """``base / record_id``, refusing an id that is not one safe folder name (``..``, ``a/b``, ...)."""
    check_record_id(record_id, f"cache {base}")
    return base / record_id


def _finished(path: Path, fingerprint: str | None) -> bool:
    """Whether ``path`` holds a finished record made from the same source files.

    ``fingerprint`` None (generated data, identified by the loader key in the path) accepts any
    finished record; otherwise the record's ``source_fingerprint`` must match (edited files → rebuild).
    """
    try:
        meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError:
        return False
    except ValueError:  # unreadable meta: not a usable record
        return False
    return fingerprint is None or meta.get("source_fingerprint") == fingerprint


def _record_lock(out_dir: Path) -> Any:
    """Inter-process lock of one cache record (``.<id>.lock`` beside it; ``filelock``: fcntl/msvcrt,
    released by the OS when its holder dies, so a killed run never leaves it locked)."""
    from filelock import FileLock

    return FileLock(str(out_dir.parent / f".{out_dir.name}.lock"))


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


def _publish(tmp: Path, out_dir: Path) -> None:
    """Rename the finished temp folder into place (under the record's lock). A stale record (edited
    source files) is first renamed to a hidden ``.<id>.old.tmp-PID`` and removed after, so the
    final name always holds a complete record or nothing."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old.tmp-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _info_from_cache(cached: CachedRecord, status: str, t0: float) -> dict[str, Any]:
    meta = json.loads((cached.path / "meta.json").read_text())
    return {"id": cached.id, "status": status, "face_source": meta.get("face_source", "?"), "n_frames": len(cached),
            "seconds": round(time.perf_counter() - t0, 3)}
