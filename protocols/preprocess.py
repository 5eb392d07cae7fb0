"""Face crop + resize into a uint8 memmap cache, shared by every method.

``cache/<loader key>/<preprocess key>/<record id>/{frames.npy, ppg.npy, meta.json}``

* frames are streamed from the record's :class:`~protocols.base.FrameSource` in blocks of at most
  8 MiB, cropped and resized (``cv2.INTER_AREA``) and appended to a ``.npy`` file that is later
  opened as a read-only memmap: the whole video is never in memory and never as float64;
* every record is written into a hidden temporary folder (``.<id>.tmp-PID``, ``meta.json`` last)
  that is renamed into place only when complete, so an interrupted run leaves no half-written record
  behind; a rerun skips finished records and clears stale temporary folders;
* a finished record is reused only if its source files are unchanged: its ``meta.json`` holds the
  content fingerprint of the files it was made from (:mod:`protocols.fingerprint`); an edited
  recording or label is preprocessed again;
* one file lock per record (``filelock``): of two processes that need the same record, one builds it
  and the other waits and reuses it, so a cache can be shared by parallel jobs;
* the face box comes from ``meta["face_box"]`` when the loader knows it (synthetic data), else from
  OpenCV's Haar cascade on the first frame (toolbox default) or on every N-th frame with a
  coordinate-wise median box; it is enlarged ×1.5 by default (toolbox ``LARGE_BOX_COEF``).
  No-face policy: ``error`` / ``full_frame`` / ``skip_record``, recorded in each record's meta.
* records can be processed by a bounded pool of worker processes (``workers`` > 1; ``spawn`` start
  method, so it is safe with threads, CUDA and macOS/Windows). Workers never receive frames: a
  loader that can rebuild one record by id (``record_ids()`` / ``record(id)``, every
  :class:`~protocols.datasets._common.FileLoader`) is sent once per worker and each task is a record
  id; other loaders' Records are pickled (lazy frame sources pickle as a few parameters). At most
  ``2 × workers`` records are in flight, each streamed block by block, so memory is bounded by
  ``workers`` × (one block + one record's labels). Workers die with their parent, even on SIGKILL
  (``PR_SET_PDEATHSIG`` on Linux, a parent-pid watch elsewhere); an error, Ctrl-C or SIGTERM stops
  the pool at once.
* ``on_error="skip"`` goes on past records that fail and lists them in the summary.
* every run ends with a summary — per record: done / cached / skipped / failed, the face source
  (``known``, ``haar_first``, ``haar_median``, ``full_frame_fallback``, ...) — which is printed and
  returned (:func:`run_preprocess`) or filled into the ``summary`` dict given to :func:`preprocess`.

Parts live beside this module and are re-exported from it: the cache on disk
(:mod:`protocols.cache_store`), face boxes (:mod:`protocols.face_box`) and the lifetime of worker
processes (:mod:`protocols.workers`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from protocols.base import DatasetFormatError, Loader, Record, check_record_id
from protocols.cache_store import (  # noqa: F401 - re-exported: protocols.preprocess is the public entry point
    CachedRecord, _child, _finished, _info_from_cache, _jsonable, _publish, _record_lock, load_cached,
)
from protocols.face_box import BLOCK_BYTES, block_frames, detect_face, enlarge_box, find_face_box, haar_cascade  # noqa: F401
from protocols.workers import (  # noqa: F401
    PARENT_POLL_S, _die_with_parent, _pid_alive, _sigterm_exit, _stop_pool, clear_stale,
)


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


# -- one record (the cache on disk: protocols.cache_store) ---------------------------------------
def record_dir(cache_root: str | Path, loader: Loader, cfg: PreprocessConfig, record_id: str) -> Path:
    return _child(Path(cache_root) / loader.key() / cfg.key(), record_id)


def preprocess_record(record: Record, cfg: PreprocessConfig, out_dir: str | Path, fingerprint: str | None = None) -> CachedRecord | None:
    """Crop/resize one record into ``out_dir`` atomically; returns None when skipped (no face).

    ``fingerprint`` (:mod:`protocols.fingerprint`) is stored in the record's ``meta.json``; a
    finished record with another fingerprint (its files were edited) is rebuilt.
    """
    cached, _ = _process(record, cfg, Path(out_dir), fingerprint)
    return cached


def _process(record: Record, cfg: PreprocessConfig, out_dir: Path, fingerprint: str | None = None,
             extra: Sequence[tuple[PreprocessConfig, Path]] = ()) -> tuple[CachedRecord | None, dict[str, Any]]:
    """:func:`preprocess_record` plus a summary line: status, face source, frames, seconds.

    ``extra``: further (config, folder) pairs that differ from ``cfg`` only in ``size``; the ones not yet
    cached are written from the same pass over the video (one decode or render, several crop sizes).

    Concurrency: the records' file locks are held (taken in path order) from the "is it finished?"
    check to the publish, so of two processes that need the same record one builds it and the other
    waits, then reuses it.
    """
    from filelock import Timeout

    t0 = time.perf_counter()
    targets = sorted({Path(out_dir), *(Path(d) for _, d in extra)}, key=str)
    locks = []
    try:
        for d in targets:
            d.parent.mkdir(parents=True, exist_ok=True)
            lock = _record_lock(d)
            try:
                lock.acquire(timeout=0)
            except Timeout:  # another process is building this record
                print(f"[preprocess] waiting for another process building {d}", file=sys.stderr)
                lock.acquire()
            locks.append(lock)
        return _process_locked(record, cfg, Path(out_dir), fingerprint, t0, extra)
    finally:
        for lock in reversed(locks):
            lock.release()


def _process_locked(record: Record, cfg: PreprocessConfig, out_dir: Path, fingerprint: str | None,
                    t0: float, extra: Sequence[tuple[PreprocessConfig, Path]] = ()) -> tuple[CachedRecord | None, dict[str, Any]]:
    todo = [(c, Path(d)) for c, d in [(cfg, out_dir), *extra] if not _finished(Path(d), fingerprint)]
    for c, _ in todo:
        if dataclasses.replace(c, size=cfg.size) != cfg:
            raise ValueError(f"preprocess: extra configs may differ in size only, got {c} beside {cfg}")
    if not todo:
        cached = load_cached(out_dir)
        return cached, _info_from_cache(cached, "cached", t0)
    box, note = find_face_box(record, cfg)
    h, w = record.frames.height, record.frames.width
    if box is None:
        if cfg.no_face == "error":
            raise NoFaceError(f"record {record.dataset}/{record.id}", "no face found (no_face=error)")
        if cfg.no_face == "skip_record":
            return None, {"id": record.id, "status": "skipped", "face_source": "none", "n_frames": len(record.frames),
                          "seconds": round(time.perf_counter() - t0, 3), "reason": "no face found (no_face=skip_record)"}
        box = (0, 0, w, h)
        note["face_source"] = "full_frame_fallback"
    x0, y0, x1, y1 = enlarge_box(box, cfg.box_coef, h, w) if note["face_source"] != "full_frame_configured" else (0, 0, w, h)
    tmps = [d.parent / f".{d.name}.tmp-{os.getpid()}" for _, d in todo]
    handles = []
    try:
        for tmp in tmps:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        t = len(record.frames)
        i = 0
        # Written sequentially (npy header + raw rows), not through a writable memmap: dirty
        # memmap pages would count towards this process's RSS and grow with the video's length.
        for (c, _), tmp in zip(todo, tmps):
            fh = open(tmp / "frames.npy", "wb")
            handles.append(fh)
            np.lib.format.write_array_header_1_0(fh, {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": (t, c.size, c.size, 3)})
        for block in record.frames.iter_blocks(block_frames(h, w)):
            if block.dtype != np.uint8 or block.ndim != 4:
                raise DatasetFormatError(f"record {record.dataset}/{record.id}", f"frames must be uint8 (t,H,W,3), got {block.dtype} {block.shape}")
            if i + len(block) > t:
                raise DatasetFormatError(f"record {record.dataset}/{record.id}", f"video yielded more than the {t} frames announced")
            for (c, _), fh in zip(todo, handles):
                out = np.empty((len(block), c.size, c.size, 3), np.uint8)
                for j, frame in enumerate(block):
                    cv2.resize(frame[y0:y1, x0:x1], (c.size, c.size), dst=out[j], interpolation=cv2.INTER_AREA)
                fh.write(out.tobytes())
            i += len(block)
        if i != t:
            raise DatasetFormatError(f"record {record.dataset}/{record.id}", f"video yielded {i} frames, expected {t}")
        for fh in handles:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        ppg = np.asarray(record.ppg, dtype=np.float32)
        for (c, d), tmp in zip(todo, tmps):
            np.save(tmp / "ppg.npy", ppg)
            meta = {
                "id": record.id, "subject": record.subject, "dataset": record.dataset, "fps": float(record.fps),
                "n_frames": t, "crop_box": [x0, y0, x1, y1], "source_size": [h, w],
                "preprocess": dataclasses.asdict(c), **note, "meta": _jsonable(dict(record.meta)),
                "source_fingerprint": fingerprint,
            }
            # meta.json is written inside the hidden temp folder: a folder under its final name is complete
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            _publish(tmp, d)
    except BaseException:
        for fh in handles:
            fh.close()
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    cached = load_cached(out_dir)
    return cached, _info_from_cache(cached, "done", t0)


# -- runs over many records ----------------------------------------------------------------------
_WORKER_LOADER: Loader | None = None


def _worker_init(loader: Loader | None, parent_pid: int | None = None) -> None:
    global _WORKER_LOADER
    _WORKER_LOADER = loader
    if parent_pid is not None:
        _die_with_parent(parent_pid)


def _run_task(task: tuple[str, Any], cfg: PreprocessConfig, out_dir: str, loader: Loader | None = None,
              raise_errors: bool = False, fingerprint: str | None = None,
              extra: Sequence[tuple[PreprocessConfig, str]] = ()) -> dict[str, Any]:
    """Process one record (in a worker or in-process); errors come back as data unless ``raise_errors``.

    In workers, exceptions are returned rather than raised because not every exception survives
    pickling across processes (``DatasetFormatError`` takes two arguments); the parent re-raises them.
    """
    kind, obj = task
    rid = obj if kind == "id" else obj.id
    t0 = time.perf_counter()
    try:
        if kind == "id":
            src = loader if loader is not None else _WORKER_LOADER
            if src is None:  # pragma: no cover - initializer not run
                raise RuntimeError("worker has no loader")
            record = src.record(rid)  # type: ignore[attr-defined]
        else:
            record = obj
        _, info = _process(record, cfg, Path(out_dir), fingerprint, [(c, Path(d)) for c, d in extra])
        return info
    except Exception as e:  # noqa: BLE001 - reported to the parent, which decides
        if raise_errors:
            raise
        return _failure(rid, e, t0)


def _reraise(info: dict[str, Any]) -> None:
    if info.get("error_path") is not None and info.get("error_reason") is not None:
        cls = NoFaceError if info["error_type"] == "NoFaceError" else DatasetFormatError
        raise cls(info["error_path"], info["error_reason"])
    raise RuntimeError(f"preprocessing record {info['id']!r} failed: {info['error']}\n{info.get('traceback', '')}")


def summarize(infos: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
    """Summary dict of a run: counts by status and by face source, plus every record's line."""
    status = Counter(i["status"] for i in infos)
    faces = Counter(i.get("face_source", "?") for i in infos if i["status"] in ("done", "cached"))
    return {
        **head,
        "n_records": len(infos),
        "counts": {k: status.get(k, 0) for k in ("done", "cached", "skipped", "failed")},
        "face_source": dict(sorted(faces.items())),
        "fallback": [i["id"] for i in infos if i.get("face_source") == "full_frame_fallback"],
        "skipped": [i["id"] for i in infos if i["status"] == "skipped"],
        "failed": {i["id"]: i.get("error", "?") for i in infos if i["status"] == "failed"},
        "records": infos,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable summary: one line of counts, then one line per notable record.

    >>> print(format_summary(summarize([{"id": "a", "status": "done", "face_source": "haar_first"},
    ...                                 {"id": "b", "status": "skipped", "face_source": "none"}], dataset="x")))
    preprocess x: 2 records — done 1, cached 0, skipped 1, failed 0 | face: haar_first 1
      skipped b: no face found
    """
    c = summary["counts"]
    faces = ", ".join(f"{k} {v}" for k, v in summary["face_source"].items()) or "-"
    lines = [
        f"preprocess {summary.get('dataset', '?')}: {summary['n_records']} records — done {c['done']}, cached {c['cached']}, "
        f"skipped {c['skipped']}, failed {c['failed']} | face: {faces}"
    ]
    for rid in summary["fallback"]:
        lines.append(f"  fallback {rid}: no face found, cropped the full frame (no_face=full_frame)")
    for rid in summary["skipped"]:
        lines.append(f"  skipped {rid}: no face found")
    for rid, err in summary["failed"].items():
        lines.append(f"  FAILED {rid}: {err}")
    return "\n".join(lines)


#: ``on_error`` values: ``raise`` stops at the first bad record; ``skip`` (alias ``continue``) goes
#: on and lists the failed records and why.
ON_ERROR = ("raise", "skip", "continue")


def preprocess(
    loader: Loader,
    cfg: PreprocessConfig,
    cache_root: str | Path,
    records: Iterable[Record] | None = None,
    progress: bool = True,
    *,
    workers: int = 0,
    on_error: str = "raise",
    summary: dict[str, Any] | None = None,
    also_sizes: Sequence[int] = (),
) -> Iterator[CachedRecord]:
    """Preprocess (or reuse from the cache) every record of ``loader``; yields cached records in order.

    ``workers`` > 1 runs a bounded process pool (see the module docstring); 0 or 1 runs in-process.
    Workers die with this process (even on SIGKILL); an exception, Ctrl-C or an abandoned generator
    kills them at once. ``on_error``: ``raise`` (default) stops at the first failing record with its
    error; ``skip`` (or ``continue``) keeps going and lists the failures in the summary. Skipped
    records (``no_face: skip_record``) are not yielded. A cached record is reused only if its source
    files are unchanged (:mod:`protocols.fingerprint`), else it is rebuilt. When the generator is
    exhausted, the run's summary is printed and, if ``summary`` is a dict, filled into it.

    ``also_sizes``: crop sizes cached in the same pass as ``cfg.size`` (the video is decoded or
    rendered once for all of them; ``rppg-bench bench`` fills every method's size this way).
    """
    from tqdm.auto import tqdm

    from protocols.fingerprint import RecordFingerprints

    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {'|'.join(ON_ERROR)}, got {on_error!r}")
    raise_errors = on_error == "raise"
    base = Path(cache_root) / loader.key() / cfg.key()
    clear_stale(base)
    extra_cfgs = [dataclasses.replace(cfg, size=int(sz)) for sz in dict.fromkeys(also_sizes) if int(sz) != cfg.size]
    extra_bases = [Path(cache_root) / loader.key() / c.key() for c in extra_cfgs]
    for b in extra_bases:
        clear_stale(b)

    def extra(rid: str) -> list[tuple[PreprocessConfig, str]]:
        return [(c, str(b / rid)) for c, b in zip(extra_cfgs, extra_bases)]
    by_id = records is None and hasattr(loader, "record_ids") and hasattr(loader, "record")
    if by_id:
        tasks: list[tuple[str, Any]] = [("id", rid) for rid in loader.record_ids()]  # type: ignore[attr-defined]
    else:
        recs = list(records) if records is not None else list(loader.records())
        if workers > 1 and hasattr(loader, "record"):
            tasks = [("id", r.id) for r in recs]  # rebuilt in the worker: nothing big crosses processes
        else:
            tasks = [("record", r) for r in recs]
    ids = [obj if kind == "id" else obj.id for kind, obj in tasks]
    if len(set(ids)) != len(ids):
        dup = sorted(i for i, c in Counter(ids).items() if c > 1)[:3]
        raise DatasetFormatError(f"dataset {loader.key()}", f"duplicate record ids, e.g. {dup}")
    for rid in ids:
        check_record_id(rid, f"dataset {loader.key()}")
    infos: list[dict[str, Any]] = []
    bar = tqdm(total=len(tasks), desc=f"preprocess {loader.key()}", disable=not progress, leave=False)
    t_start = time.perf_counter()

    # Source fingerprints, taken before records are read here or in a worker (an edit during the run then
    # errs towards a rebuild; Records passed in were read earlier, by the caller).
    fpr = RecordFingerprints(loader, cache_root)
    fingerprints: dict[str, str | None] = {}
    early: dict[str, dict[str, Any]] = {}
    for rid in ids:
        try:
            fingerprints[rid] = fpr.get(rid)
        except (DatasetFormatError, OSError) as e:
            if raise_errors:
                bar.close()
                raise
            early[rid] = _failure(rid, e, time.perf_counter())
    fpr.save()

    def handle(info: dict[str, Any]) -> CachedRecord | None:
        infos.append({k: v for k, v in info.items() if k != "traceback"})
        bar.update(1)
        if info["status"] == "failed":
            if raise_errors:
                bar.close()
                _reraise(info)
            return None
        if info["status"] == "skipped":
            return None
        return load_cached(base / info["id"])

    def cached_info(rid: str) -> dict[str, Any] | None:
        if rid in early:
            return early[rid]
        if _finished(base / rid, fingerprints[rid]) and all(_finished(b / rid, fingerprints[rid]) for b in extra_bases):
            return _info_from_cache(load_cached(base / rid), "cached", time.perf_counter())
        return None

    try:
        if workers <= 1:
            for task in tasks:
                rid = task[1] if task[0] == "id" else task[1].id
                info = cached_info(rid)
                if info is None:
                    info = _run_task(task, cfg, str(base / rid), loader=loader, raise_errors=raise_errors,
                                     fingerprint=fingerprints[rid], extra=extra(rid))
                out = handle(info)
                if out is not None:
                    yield out
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("spawn")
            pool_loader = loader if any(k == "id" for k, _ in tasks) else None
            ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                     initargs=(pool_loader, os.getpid()))
            pending: deque[tuple[str, Any]] = deque()
            try:
                for task in tasks:
                    rid = task[1] if task[0] == "id" else task[1].id
                    info = cached_info(rid)
                    if info is not None:
                        pending.append((rid, info))
                    else:
                        pending.append((rid, ex.submit(_run_task, task, cfg, str(base / rid), None, False, fingerprints[rid], extra(rid))))
                    while len(pending) > 2 * workers or (pending and isinstance(pending[0][1], dict)):
                        out = _collect(pending.popleft(), handle)
                        if out is not None:
                            yield out
                while pending:
                    out = _collect(pending.popleft(), handle)
                    if out is not None:
                        yield out
            except BaseException:
                _stop_pool(ex)
                for b in (base, *extra_bases):
                    clear_stale(b)  # the killed workers' temp folders
                raise
            ex.shutdown(wait=True)
    finally:
        bar.close()
    result = summarize(infos, dataset=loader.key(), preprocess=cfg.key(), cache_dir=str(base),
                       workers=workers, seconds=round(time.perf_counter() - t_start, 2))
    print(format_summary(result), file=sys.stderr)
    if summary is not None:
        summary.clear()
        summary.update(result)


def _failure(rid: str, e: BaseException, t0: float) -> dict[str, Any]:
    return {
        "id": rid, "status": "failed", "face_source": "?", "seconds": round(time.perf_counter() - t0, 3),
        "error": f"{type(e).__name__}: {e}", "error_type": type(e).__name__,
        "error_path": getattr(e, "path", None), "error_reason": getattr(e, "reason", None),
        "traceback": traceback.format_exc(),
    }


def _collect(item: tuple[str, Any], handle: Any) -> CachedRecord | None:
    _, fut = item
    return handle(fut if isinstance(fut, dict) else fut.result())


class RecordsFailedError(RuntimeError):
    """Records failed and were skipped (``on_error=skip``); ``failed`` maps "alias/id" → error."""

    def __init__(self, failed: dict[str, str], what: str = "run"):
        self.failed = dict(failed)
        lines = "\n".join(f"  {k}: {v}" for k, v in self.failed.items())
        super().__init__(f"{what}: {len(self.failed)} record(s) failed and were skipped (on_error=skip); "
                         f"the metrics cover the other records only:\n{lines}")

    def __reduce__(self):
        return (type(self), (self.failed,))


class NoRecordsError(ValueError):
    """A split ended with no usable record; the message lists which were skipped or failed and why."""


def list_records(loader: Loader, on_error: str = "raise") -> tuple[list[Record], dict[str, str]]:
    """A loader's Records, and with ``on_error`` ``skip`` the ones that failed to load (id → error)
    instead of the first error. Loaders without ``record_ids()``/``record(id)`` are listed in one go."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {'|'.join(ON_ERROR)}, got {on_error!r}")
    if on_error == "raise" or not (hasattr(loader, "record_ids") and hasattr(loader, "record")):
        return list(loader.records()), {}
    recs, failed = [], {}
    for rid in loader.record_ids():  # type: ignore[attr-defined]
        try:
            recs.append(loader.record(rid))  # type: ignore[attr-defined]
        except DatasetFormatError as e:
            failed[rid] = f"{type(e).__name__}: {e}"
    return recs, failed


def preprocess_split(loader: Loader, cfg: PreprocessConfig, cache_root: str | Path, records: list[Record], *,
                     progress: bool = True, on_error: str = "raise", what: str = "split") -> tuple[list[CachedRecord], dict[str, str]]:
    """Preprocess the records of one split → (cached records, failed id → error).

    Raises :class:`NoRecordsError` when records were given but none is left, saying which were skipped
    for having no face (``no_face=skip_record``) and which failed, instead of a bare "nothing to evaluate".
    """
    summary: dict[str, Any] = {}
    out = list(preprocess(loader, cfg, cache_root, records=records, progress=progress, on_error=on_error, summary=summary))
    failed = dict(summary.get("failed") or {})
    if records and not out:
        parts = []
        if summary.get("skipped"):
            sk = summary["skipped"]
            parts.append(f"{len(sk)} skipped because no face was found (no_face=skip_record): {', '.join(sk[:10])}"
                         + (" ..." if len(sk) > 10 else "") + "; no_face=full_frame would crop the whole frame instead")
        if failed:
            parts.append(f"{len(failed)} failed: " + "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:5]))
        raise NoRecordsError(f"{what} of {loader.key()}: none of its {len(records)} record(s) is usable — " + " | ".join(parts))
    return out, failed


def run_preprocess(
    dataset_name: str,
    dataset_kwargs: dict[str, Any],
    cfg: PreprocessConfig,
    cache_root: str | Path,
    workers: int = 1,
    *,
    progress: bool = True,
    on_error: str = "raise",
    also_sizes: Sequence[int] = (),
) -> dict[str, Any]:
    """Preprocess a whole dataset (``rppg-bench preprocess dataset=NAME dataset.root=PATH``).

    Builds the loader with :func:`~protocols.base.create_dataset`, runs :func:`preprocess` with
    ``workers`` processes and returns the summary dict (also printed): ``counts`` by status,
    ``face_source`` counts, the ``fallback`` / ``skipped`` / ``failed`` record ids and one entry per
    record under ``records``.
    """
    from protocols.base import create_dataset

    import signal
    import threading

    loader = create_dataset(dataset_name, **dict(dataset_kwargs))
    summary: dict[str, Any] = {}
    # SIGTERM (e.g. a scheduler's cancel) → SystemExit, so the worker pool is stopped and temp folders
    # are removed on the way out, as on Ctrl-C; SIGKILL cannot be caught — workers then die on their own.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _sigterm_exit) if main else None
    try:
        for _ in preprocess(loader, cfg, cache_root, progress=progress, workers=workers, on_error=on_error, summary=summary,
                            also_sizes=also_sizes):
            pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    summary["dataset_name"] = dataset_name
    return summary
