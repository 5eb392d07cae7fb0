"""Records, frame sources, dataset loaders and their registry.

A :class:`Record` is one video with its contact PPG, already aligned to the frames (one PPG
sample per frame). Frames are *lazy*: a :class:`FrameSource` streams uint8 RGB blocks, so a
loader never holds a whole video (let alone a float64 copy of it) in memory.

A loader is a class registered with :func:`register_dataset`; it lists Records and knows nothing
about models. ``create_dataset("synthetic", domain="lab")`` builds one from config.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class DatasetFormatError(ValueError):
    """Bad input at the dataset boundary; names the file and what is wrong with it."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable across worker processes (subclasses share the signature)
        return (type(self), (self.path, self.reason))


#: Shortest record (seconds) a file loader accepts. The classic methods need 2 s of frames
#: (``methods/_unsupervised_common.MIN_SECONDS``) and an HR below 1 s of signal has no meaning, so a
#: shorter video (or a label that leaves less than this after alignment) is rejected at load time
#: naming the file, instead of failing later in a method or in evaluation without it.
MIN_RECORD_SECONDS = 2.0

_UNSAFE_ID = re.compile(r"[%/\\\x00-\x1f]")
_UNSAFE_PATH = re.compile(r"[/\\\x00-\x1f]")


def safe_record_id(raw: str) -> str:
    """A record id that is safe as one path component: the id itself when it already is, else a
    deterministic percent-encoding (``%`` → ``%25``, path separators and control characters →
    ``%XX``, leading dots → ``%2E``), so ids stay unique and never name ``.``, ``..``, a hidden
    folder or a path outside the cache folder.

    >>> [safe_record_id(s) for s in ("subject1", ".", "..", ".hidden", "a/b", "50%")]
    ['subject1', '%2E', '%2E%2E', '%2Ehidden', 'a%2Fb', '50%25']
    """
    raw = str(raw)
    if not raw:
        raise ValueError("record id must not be empty")
    out = _UNSAFE_ID.sub(lambda m: f"%{ord(m.group()):02X}", raw)
    lead = len(out) - len(out.lstrip("."))
    return "%2E" * lead + out[lead:]


def check_record_id(rid: str, where: str) -> str:
    """Raise :class:`DatasetFormatError` unless ``rid`` is already a safe path component."""
    if not isinstance(rid, str) or not rid or rid.startswith(".") or _UNSAFE_PATH.search(rid):
        raise DatasetFormatError(where, f"record id {rid!r} is not a safe folder name (empty, '.', '..', hidden, or "
                                        f"contains a path separator or a control character); use "
                                        f"protocols.base.safe_record_id → {safe_record_id(rid) if rid else '?'!r}")
    return rid


def rebuffer(chunks: Iterable[np.ndarray], block: int) -> Iterator[np.ndarray]:
    """Regroup a stream of frame arrays (t_i, ...) into blocks of ``block`` frames (the last may be shorter).

    >>> [len(b) for b in rebuffer((np.zeros((n, 1)) for n in (3, 4, 2)), 4)]
    [4, 4, 1]
    """
    block = max(int(block), 1)
    pending: list[np.ndarray] = []
    have = 0
    for chunk in chunks:
        pending.append(chunk)
        have += len(chunk)
        while have >= block:
            buf = np.concatenate(pending, axis=0) if len(pending) > 1 else pending[0]
            yield buf[:block]
            rest = buf[block:]
            pending, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield np.concatenate(pending, axis=0)


class FrameSource:
    """Lazy access to a video's frames as uint8 RGB blocks of shape (t, H, W, 3).

    Subclasses implement :meth:`_read` (streaming is enough; random access is optional) and set
    ``n_frames``, ``height`` and ``width``.
    """

    n_frames: int
    height: int
    width: int

    def __len__(self) -> int:
        return self.n_frames

    def iter_blocks(self, block: int = 64) -> Iterator[np.ndarray]:
        """Yield consecutive uint8 blocks (t, H, W, 3), t ≤ ``block``, covering every frame once."""
        yield from self._read(block)

    def _read(self, block: int) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_all(self) -> np.ndarray:
        """All frames as one uint8 array (T, H, W, 3). Only for small videos (tests, fixtures)."""
        blocks = list(self.iter_blocks())
        if not blocks:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        return np.concatenate(blocks, axis=0)


class ArrayFrames(FrameSource):
    """Frames already in memory or memory-mapped: a (T, H, W, 3) uint8 array."""

    def __init__(self, array: np.ndarray, name: str = "frames"):
        if array.ndim != 4 or array.shape[-1] != 3:
            raise DatasetFormatError(name, f"frames must be (T, H, W, 3), got shape {array.shape}")
        if array.dtype != np.uint8:
            # a silent cast would turn NaN into arbitrary bytes and wrap values outside 0–255
            raise DatasetFormatError(name, f"frames must be uint8 RGB, got {array.dtype}; convert (and check for NaN) first")
        self.array = array
        self.n_frames, self.height, self.width = (int(s) for s in array.shape[:3])

    def _read(self, block: int) -> Iterator[np.ndarray]:
        for start in range(0, self.n_frames, block):
            yield np.asarray(self.array[start : start + block], dtype=np.uint8)


@dataclass(frozen=True)
class Record:
    """One video with its contact PPG.

    ``ppg`` has one sample per frame (loaders interpolate from the label's own clock).
    ``meta`` carries dataset metadata (lighting, motion, task, quality, ...); a known face box can
    be given as ``meta["face_box"] = (x, y, w, h)`` in frame pixels, which lets preprocessing skip
    detection (the synthetic generator does this).
    """

    id: str
    subject: str
    dataset: str
    fps: float
    frames: FrameSource
    ppg: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"record {self.dataset}/{self.id}"
        check_record_id(self.id, where)
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise DatasetFormatError(where, f"fps must be > 0, got {self.fps}")
        if len(self.frames) == 0:
            raise DatasetFormatError(where, "empty record: the video has no frames")
        ppg = np.asarray(self.ppg)
        if ppg.ndim != 1 or len(ppg) != len(self.frames):
            raise DatasetFormatError(
                where, f"PPG must have one sample per frame: {ppg.shape} vs {len(self.frames)} frames"
            )
        if not np.all(np.isfinite(ppg)):
            raise DatasetFormatError(where, f"PPG label contains {int((~np.isfinite(ppg)).sum())} NaN/inf values")


class Loader:
    """A dataset: lists its Records in a deterministic (sorted) order.

    Subclasses set ``name`` through :func:`register_dataset` and implement :meth:`records`.
    ``key()`` identifies the loader's output for the preprocessing cache.
    """

    name: str = "?"
    #: Version of what the loader produces from the same arguments (a generator's rendering, a
    #: parser's output); part of a run's identity, so a change re-runs finished benchmark configs.
    version: int = 1
    #: Whether records are read from files (then :meth:`source_files` names them and their content
    #: fingerprint enters the cache and run identity); False for generated data.
    reads_files: bool = False

    def records(self) -> Iterator[Record]:  # pragma: no cover - abstract
        raise NotImplementedError

    def key(self) -> str:
        """String that changes whenever the Records this loader yields would change."""
        return self.name

    def source_files(self, rid: str) -> list[Path] | None:
        """The files record ``rid`` is read from (video or frame images, label files), or None for
        generated data, whose identity is :meth:`key` (its parameters and generator version).
        Used by :mod:`protocols.fingerprint` so that edited files are re-preprocessed and re-run."""
        return None


_DATASETS: dict[str, type[Loader]] = {}


def register_dataset(name: str) -> Callable[[type[Loader]], type[Loader]]:
    """Class decorator: make a loader available as ``dataset=<name>``."""

    def deco(cls: type[Loader]) -> type[Loader]:
        if name in _DATASETS and _DATASETS[name] is not cls:
            raise ValueError(f"dataset {name!r} is already registered by {_DATASETS[name].__module__}")
        cls.name = name
        _DATASETS[name] = cls
        return cls

    return deco


def _import_loaders() -> None:
    import importlib
    import pkgutil

    import protocols

    try:
        importlib.import_module("protocols.synthetic")
    except ModuleNotFoundError as exc:
        if exc.name != "protocols.synthetic":
            raise
    try:
        pkg = importlib.import_module("protocols.datasets")
    except ModuleNotFoundError:
        return
    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"protocols.datasets.{mod.name}")
    del protocols


def list_datasets(pattern: str = "*") -> list[str]:
    _import_loaders()
    return sorted(n for n in _DATASETS if fnmatch.fnmatch(n, pattern))


def create_dataset(name: str, **cfg: Any) -> Loader:
    """Build a registered loader; unknown names list the valid ones."""
    _import_loaders()
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name](**cfg)
