"""Shared pieces of the real-dataset loaders.

* :class:`VideoFileFrames` / :class:`ImageFolderFrames` — lazy :class:`~protocols.base.FrameSource`
  implementations that stream uint8 RGB blocks from a video file (OpenCV's FFmpeg backend) or from a
  folder of still images. They hold a path and a few integers only, so a Record stays cheap and
  picklable (worker processes re-open the file themselves).
* label alignment: :func:`align_label` interpolates a contact-PPG signal onto the frame times from
  the label's *own* clock (timestamps or a stated sampling rate), trims frames the label does not
  cover and raises when the label falls short of the video by more than a tolerance;
  :func:`resample_by_index` is the toolbox's index resampling, kept for datasets that give no clock.
* readers with errors that name the file (:func:`read_json`, :func:`read_csv`, :func:`check_finite`).
* :class:`FileLoader` — base class of the on-disk loaders: root validation, a cheap sorted index of
  record ids, ``record(id)`` for worker processes, and a ``key()`` that covers the root and every
  option that changes the Records.

References for the alignment conventions: ``shared/reference/datasets-and-evaluation.md`` §0
("linear resample" = ``np.interp`` over the sample index in rPPG-Toolbox ``BaseLoader.resample_ppg``;
no toolbox loader uses timestamps).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from protocols.base import MIN_RECORD_SECONDS, DatasetFormatError, FrameSource, Loader, Record, safe_record_id
from protocols.protocol import natural_key

#: Default for how much shorter (in seconds) a label may be than its video before loading fails.
DEFAULT_LABEL_TOLERANCE_S = 1.0


# -- frame sources -------------------------------------------------------------------------------
def _check_indices(indices: Sequence[int] | np.ndarray | None, n_total: int, where: str | Path) -> np.ndarray | None:
    if indices is None:
        return None
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError(f"{where}: frame indices must be 1-D")
    if len(idx) and (idx[0] < 0 or idx[-1] >= n_total or np.any(np.diff(idx) <= 0)):
        raise DatasetFormatError(where, f"frame indices must be strictly increasing within [0, {n_total})")
    return idx


#: Frames probed at load time to tell a grayscale video from a colour one (see :func:`is_achromatic`).
GRAY_PROBE_FRAMES = 16


def is_achromatic(frame: np.ndarray) -> bool:
    """Whether a (H, W, 3) frame has R = G = B everywhere, as a grayscale video decoded to RGB has.

    >>> is_achromatic(np.full((2, 2, 3), 7, np.uint8)), is_achromatic(np.array([[[1, 2, 3]]], np.uint8))
    (True, False)
    """
    return bool(np.array_equal(frame[..., 0], frame[..., 1]) and np.array_equal(frame[..., 1], frame[..., 2]))


def _gray_error(path: str | Path, n: int) -> DatasetFormatError:
    return DatasetFormatError(path, f"grayscale video (R = G = B in all of the first {n} frames): rPPG needs colour; "
                                    "convert or drop this file")


class VideoFileFrames(FrameSource):
    """Frames of one video file, decoded on demand with ``cv2.VideoCapture`` and converted BGR→RGB.

    Only the path and the geometry are stored; every :meth:`iter_blocks` call opens its own capture
    and yields freshly allocated uint8 blocks (t, H, W, 3), so at most one block is in memory.

    ``indices`` (strictly increasing original frame numbers) selects a subset of frames, e.g. to drop a
    corrupted start or frames the label does not cover; skipped frames are grabbed (demuxed and decoded
    by FFmpeg, but not colour-converted or copied).

    The frame count comes from the container (``CAP_PROP_FRAME_COUNT``); with ``count_frames=True`` —
    or when the container does not state it — frames are counted by decoding the file once. A file that
    decodes to fewer frames than announced (a truncated download, e.g. UBFC-rPPG subject33) raises
    :class:`DatasetFormatError` naming the file when the missing frames are reached.

    >>> VideoFileFrames("/nonexistent.avi")
    Traceback (most recent call last):
    ...
    protocols.base.DatasetFormatError: /nonexistent.avi: video file missing
    """

    def __init__(self, path: str | Path, indices: Sequence[int] | np.ndarray | None = None, count_frames: bool = False):
        self.path = str(path)
        p = Path(path)
        if not p.is_file():
            raise DatasetFormatError(p, "video file missing")
        cap = cv2.VideoCapture(self.path)
        try:
            if not cap.isOpened():
                raise DatasetFormatError(p, "cannot open video (unreadable file or unsupported codec)")
            announced = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            ok, frame = cap.read()
            if not ok or frame is None:
                raise DatasetFormatError(p, "video has no decodable frames (zero-frame, truncated or corrupt file)")
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise DatasetFormatError(p, f"expected 3-channel colour frames, got shape {frame.shape}")
            # OpenCV decodes grayscale streams to 3 equal channels: accept the file only when one of
            # the first GRAY_PROBE_FRAMES frames has colour (a dark first frame alone proves nothing).
            probed, gray = 1, is_achromatic(frame)
            while gray and probed < GRAY_PROBE_FRAMES:
                ok, nxt = cap.read()
                if not ok or nxt is None:
                    break
                probed += 1
                gray = is_achromatic(nxt)
            if gray:
                raise _gray_error(p, probed)
            n = announced
            if count_frames or announced <= 0:
                n = probed
                while cap.grab():
                    n += 1
        finally:
            cap.release()
        self.n_total = n
        self.container_fps = fps if np.isfinite(fps) and fps > 0 else 0.0
        self.height, self.width = int(frame.shape[0]), int(frame.shape[1])
        self.indices = _check_indices(indices, n, p)
        self.n_frames = n if self.indices is None else len(self.indices)

    def subset(self, indices: Sequence[int] | np.ndarray) -> VideoFileFrames:
        """Same file, only the given original frame numbers (no re-probing of the file)."""
        new = object.__new__(VideoFileFrames)
        new.__dict__.update(self.__dict__)
        base = np.arange(self.n_total) if self.indices is None else self.indices
        new.indices = _check_indices(base[np.asarray(indices, dtype=np.int64)], self.n_total, self.path)
        new.n_frames = len(new.indices)
        return new

    def _read(self, block: int) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise DatasetFormatError(self.path, "cannot open video (unreadable file or unsupported codec)")
        h, w = self.height, self.width
        targets = range(self.n_total) if self.indices is None else self.indices.tolist()
        pos = 0  # frames consumed from the decoder so far
        remaining = self.n_frames
        buf: np.ndarray | None = None
        j = 0
        try:
            for idx in targets:
                while pos < idx:
                    if not cap.grab():
                        raise DatasetFormatError(self.path, f"decoder stopped after {pos} of {self.n_total} announced frames (truncated or corrupt video)")
                    pos += 1
                ok, frame = cap.read()
                if not ok or frame is None:
                    raise DatasetFormatError(self.path, f"decoder stopped after {pos} of {self.n_total} announced frames (truncated or corrupt video)")
                pos += 1
                if frame.shape != (h, w, 3):
                    raise DatasetFormatError(self.path, f"frame {pos - 1} has shape {frame.shape}, first frame was {(h, w, 3)}")
                if buf is None:
                    buf = np.empty((min(block, remaining), h, w, 3), np.uint8)
                cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=buf[j])
                j += 1
                remaining -= 1
                if j == len(buf):
                    yield buf
                    buf, j = None, 0
        finally:
            cap.release()


class ImageFolderFrames(FrameSource):
    """Frames stored as one image file each (PURE PNGs, iBVP BMPs), read with ``cv2.imread``.

    ``paths`` is the ordered list of image files (the loader decides the order); only the list is kept.
    """

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise DatasetFormatError("<empty image list>", "no frames")
        first = self._load(self.paths[0])
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        self.n_frames = len(self.paths)
        if is_achromatic(first):  # imread(IMREAD_COLOR) turns a grayscale image into 3 equal channels
            probe = self.paths[1:GRAY_PROBE_FRAMES]
            if all(is_achromatic(self._load(q)) for q in probe):
                raise _gray_error(Path(self.paths[0]).parent, 1 + len(probe))

    @staticmethod
    def _load(path: str) -> np.ndarray:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetFormatError(path, "unreadable image file" if Path(path).is_file() else "image file missing")
        return img

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageFolderFrames:
        new = object.__new__(ImageFolderFrames)
        new.__dict__.update(self.__dict__)
        new.paths = [self.paths[int(i)] for i in indices]
        new.n_frames = len(new.paths)
        return new

    def _read(self, block: int) -> Iterator[np.ndarray]:
        h, w = self.height, self.width
        for start in range(0, self.n_frames, block):
            chunk = self.paths[start : start + block]
            buf = np.empty((len(chunk), h, w, 3), np.uint8)
            for j, path in enumerate(chunk):
                img = self._load(path)
                if img.shape != (h, w, 3):
                    raise DatasetFormatError(path, f"image has shape {img.shape}, first frame was {(h, w, 3)}")
                cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=buf[j])
            yield buf


def float_frames_to_uint8(x: np.ndarray) -> np.ndarray:
    """Frames stored as floats in [0, 1] (MMPD, SCAMPS) → uint8, as the toolbox: ``round(x·255)``.

    Values are clipped to [0, 255] first; integer input in 0…255 is passed through.

    >>> float_frames_to_uint8(np.array([0.0, 0.5, 1.0, 1.2])).tolist()
    [0, 128, 255, 255]
    """
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):
        return np.clip(x, 0, 255).astype(np.uint8)
    return np.clip(np.rint(np.asarray(x, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


# -- label clocks --------------------------------------------------------------------------------
def check_finite(values: np.ndarray, where: str | Path, what: str = "PPG label") -> np.ndarray:
    """Raise :class:`DatasetFormatError` naming ``where`` if ``values`` holds NaN/inf."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetFormatError(where, f"{what} contains {int(bad.sum())} NaN/inf value(s) (first at sample {first})")
    return values


def frame_times(n: int, fps: float) -> np.ndarray:
    """Times (s) of ``n`` frames at a constant ``fps``, frame 0 at t = 0."""
    return np.arange(n, dtype=np.float64) / float(fps)


@dataclass(frozen=True)
class Alignment:
    """Result of :func:`align_label`: PPG on the kept frames and which frames were kept."""

    ppg: np.ndarray          # (stop - start,) one sample per kept frame
    start: int               # first kept frame (index into the frame_times given)
    stop: int                # one past the last kept frame
    label_rate_hz: float     # median rate of the label clock
    uncovered_s: float       # video time not covered by the label (trimmed)
    n_frames: int            # number of frame times given

    def meta(self) -> dict[str, Any]:
        """What the alignment did, for the record's metadata."""
        return {
            "label_rate_hz": round(self.label_rate_hz, 4),
            "frames_trimmed": [self.start, self.n_frames - self.stop],
            "label_uncovered_s": round(self.uncovered_s, 4),
        }


def align_label(
    values: np.ndarray,
    label_times: np.ndarray,
    times_of_frames: np.ndarray,
    *,
    where: str | Path,
    tolerance_s: float = DEFAULT_LABEL_TOLERANCE_S,
) -> Alignment:
    """Interpolate a label onto frame times using the label's own clock.

    ``label_times`` and ``times_of_frames`` are in seconds on one common clock. Linear interpolation
    (``np.interp``), as the toolbox, but over *time* instead of sample index. A frame is covered when it
    lies within the label's span extended by one label period at either end (the label value is held
    there); frames outside are trimmed from the start/end of the record. If the trimmed duration exceeds
    ``tolerance_s``, the label is too short for the video and :class:`DatasetFormatError` names ``where``.

    Duplicate timestamps keep their first sample; timestamps that go backwards are an error.

    >>> t = np.arange(0, 10, 1 / 60)                      # 60 Hz label
    >>> a = align_label(np.sin(2 * np.pi * t), t, np.arange(300) / 30, where="x")
    >>> bool(np.allclose(a.ppg, np.sin(2 * np.pi * np.arange(300) / 30))), a.start, a.stop
    (True, 0, 300)
    >>> align_label(np.ones(60), np.arange(60) / 60, np.arange(300) / 30, where="lab.csv")
    Traceback (most recent call last):
    ...
    protocols.base.DatasetFormatError: lab.csv: label covers 1.00 s but the video lasts 10.00 s: 8.97 s of video have no label (tolerance 1.0 s)
    """
    values = check_finite(values, where)
    lt = check_finite(label_times, where, "label timestamps")
    ft = np.asarray(times_of_frames, dtype=np.float64)
    if values.ndim != 1 or lt.shape != values.shape:
        raise DatasetFormatError(where, f"label has {values.shape} values but {lt.shape} timestamps")
    if len(values) < 2:
        raise DatasetFormatError(where, f"label has {len(values)} sample(s); need at least 2")
    d = np.diff(lt)
    if np.any(d < 0):
        k = int(np.flatnonzero(d < 0)[0])
        raise DatasetFormatError(where, f"label timestamps go backwards at sample {k + 1} ({lt[k]} → {lt[k + 1]})")
    if np.any(d == 0):
        keep = np.concatenate([[True], d > 0])
        lt, values = lt[keep], values[keep]
        if len(values) < 2:
            raise DatasetFormatError(where, "label timestamps are all equal")
        d = np.diff(lt)
    period = float(np.median(d))
    lo, hi = lt[0] - period, lt[-1] + period
    inside = (ft >= lo) & (ft <= hi)
    n = len(ft)
    frame_period = float(np.median(np.diff(ft))) if n > 1 else period
    if not inside.any():
        raise DatasetFormatError(
            where,
            f"label spans {lt[0]:.3f}–{lt[-1]:.3f} s but the frames span {ft[0]:.3f}–{ft[-1]:.3f} s: no overlap",
        )
    start = int(np.argmax(inside))
    stop = int(n - np.argmax(inside[::-1]))
    if not inside[start:stop].all():  # only possible with non-monotonic frame times
        raise DatasetFormatError(where, "frame times are not increasing")
    uncovered = (start + (n - stop)) * frame_period
    if uncovered > tolerance_s:
        video_s = n * frame_period
        raise DatasetFormatError(
            where,
            f"label covers {lt[-1] - lt[0] + period:.2f} s but the video lasts {video_s:.2f} s: "
            f"{uncovered:.2f} s of video have no label (tolerance {tolerance_s} s)",
        )
    ppg = np.interp(ft[start:stop], lt, values)
    return Alignment(ppg=ppg, start=start, stop=stop, label_rate_hz=1.0 / period, uncovered_s=uncovered, n_frames=n)


def resample_by_index(values: np.ndarray, n: int, where: str | Path) -> np.ndarray:
    """Toolbox resampling: stretch the label over ``n`` frames by sample index (first↔first, last↔last).

    Only for datasets that give the label no clock (MMPD); it assumes both streams start and stop
    together.

    >>> resample_by_index(np.array([0.0, 1.0, 2.0]), 5, "x").tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    values = check_finite(values, where)
    if values.ndim != 1 or len(values) < 2:
        raise DatasetFormatError(where, f"label must be a 1-D signal with ≥ 2 samples, got shape {values.shape}")
    return np.interp(np.linspace(0, len(values) - 1, n), np.arange(len(values)), values)


# -- readers -------------------------------------------------------------------------------------
def h5py_module() -> Any:
    """``h5py``, imported on first use (SCAMPS .mat v7.3 and COHFACE .hdf5 need it)."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - dependency missing
        raise ImportError("the SCAMPS and COHFACE loaders need h5py (pip install h5py)") from e
    return h5py


def require_file(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DatasetFormatError(p, f"{what} missing")
    return p


def read_json(path: str | Path, what: str = "label file") -> Any:
    p = require_file(path, what)
    try:
        with p.open("rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(p, f"invalid JSON: {e}") from None


def read_csv(path: str | Path, *, header: bool | None = None, what: str = "label file") -> tuple[list[str] | None, np.ndarray]:
    """Read a numeric CSV → (column names or None, float64 array (rows, cols)).

    ``header=None`` detects a header row: the first row counts as a header when any of its fields is
    not a number. Non-numeric fields below the header are an error naming the file and the line.
    """
    import pandas as pd

    p = require_file(path, what)
    try:
        raw = pd.read_csv(p, header=None, dtype=str, skipinitialspace=True, skip_blank_lines=True, comment=None)
    except pd.errors.EmptyDataError:
        raise DatasetFormatError(p, "empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DatasetFormatError(p, f"not a readable CSV: {e}") from None
    if raw.empty:
        raise DatasetFormatError(p, "empty file")

    def _is_num(s: Any) -> bool:
        try:
            float(s)
            return True
        except (TypeError, ValueError):
            return False

    first = raw.iloc[0].tolist()
    has_header = (not all(_is_num(s) for s in first if s is not None and s == s)) if header is None else header
    names = [str(s).strip() for s in first] if has_header else None
    body = raw.iloc[1:] if has_header else raw
    if body.empty:
        raise DatasetFormatError(p, "no data rows")
    data = body.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(data) & body.notna().to_numpy() & ~body.isin(["nan", "NaN", "NAN"]).to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        line = int(r) + 1 + (1 if has_header else 0)
        raise DatasetFormatError(p, f"non-numeric value {body.iat[int(r), int(c)]!r} at line {line}, column {int(c) + 1}")
    return names, data


def column(names: list[str] | None, data: np.ndarray, name: str | None, index: int, where: str | Path) -> np.ndarray:
    """A column by header name (case-insensitive) if given and present, else by position."""
    if name is not None and names is not None:
        low = [n.lower() for n in names]
        if name.lower() in low:
            return data[:, low.index(name.lower())]
    if index >= data.shape[1]:
        raise DatasetFormatError(where, f"expected at least {index + 1} columns, found {data.shape[1]}" + (f" ({names})" if names else ""))
    return data[:, index]


# -- loader base ---------------------------------------------------------------------------------
class FileLoader(Loader):
    """Base of the on-disk loaders.

    Subclasses call ``super().__init__(root, **options)`` with every option (checked and normalised)
    that changes their Records: each becomes an attribute and enters :meth:`key`. They implement :meth:`_scan` (cheap listing: record id → whatever
    :meth:`_load` needs, e.g. paths) and :meth:`_load` (build one Record; reads labels, probes the video).
    ``layout`` is a one-line description of the expected on-disk layout used in error messages.
    """

    layout: str = "?"
    reads_files = True
    #: Shortest record accepted (s); see :data:`protocols.base.MIN_RECORD_SECONDS`.
    min_seconds: float = MIN_RECORD_SECONDS

    def __init__(self, root: str | Path | None, **options: Any):
        if root is None or str(root).strip() in ("", "None", "null", "???"):
            raise DatasetFormatError(str(root), f"{self.name}: dataset root is not set (pass dataset.root=PATH or set the environment variable)")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetFormatError(self.root, f"{self.name} root folder does not exist" if not self.root.exists() else f"{self.name} root is not a folder")
        self.options = dict(options)
        for k, v in self.options.items():  # options are read as attributes, so none can miss key()
            setattr(self, k, v)
        tol = float(self.options.get("label_tolerance_s", DEFAULT_LABEL_TOLERANCE_S))
        if not tol >= 0:
            raise ValueError(f"label_tolerance_s must be >= 0, got {tol}")
        found = self._scan()
        if not found:
            raise DatasetFormatError(self.root, f"no recognisable {self.name} records; expected layout: {self.layout}")
        safe: dict[str, Any] = {}
        for k, v in found.items():  # ids come from file names: '..mp4' must not name the parent folder
            sk = safe_record_id(k)
            if sk in safe:
                raise DatasetFormatError(self.root, f"records {k!r} and another file both map to the safe id {sk!r}")
            safe[sk] = v
        self._index: dict[str, Any] = {k: safe[k] for k in sorted(safe, key=natural_key)}

    # abstract
    def _scan(self) -> Mapping[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, rid: str, info: Any) -> Record:  # pragma: no cover - abstract
        raise NotImplementedError

    # public
    def key(self) -> str:
        blob = json.dumps({"root": str(self.root.resolve()), **self.options}, sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def record_ids(self) -> list[str]:
        return list(self._index)

    def record(self, rid: str) -> Record:
        if rid not in self._index:
            raise KeyError(f"{self.name}: no record {rid!r} under {self.root}")
        return self._checked(self._load(rid, self._index[rid]), rid)

    def records(self) -> Iterator[Record]:
        for rid, info in self._index.items():
            yield self._checked(self._load(rid, info), rid)

    def source_files(self, rid: str) -> list[Path]:
        """Files record ``rid`` is read from: every path in its :meth:`_scan` entry, folders expanded
        to the (non-hidden) files below them. Loaders whose entry does not name every file they read
        (a label next to the video) override this."""
        if rid not in self._index:
            raise KeyError(f"{self.name}: no record {rid!r} under {self.root}")
        return sorted(set(_paths_in(self._index[rid])))

    def _checked(self, rec: Record, rid: str) -> Record:
        """Reject records too short to be used (one frame; less than :data:`MIN_RECORD_SECONDS`),
        naming the file, before anything downstream fails without it."""
        n = len(rec.frames)
        need = max(2, math.ceil(self.min_seconds * rec.fps - 1e-9))
        if n < need:
            src = getattr(rec.frames, "path", None) or next(iter(self.source_files(rid)), self.root / rid)
            what = "a single frame" if n == 1 else f"{n} frames ({n / rec.fps:.2f} s at {rec.fps:g} fps)"
            after = " after aligning the label" if rec.meta.get("frames_trimmed", [0, 0]) != [0, 0] else ""
            raise DatasetFormatError(src, f"record {rid!r} has {what}{after}; at least {need} frames "
                                          f"({self.min_seconds:g} s) are needed to estimate a heart rate")
        return rec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, {len(self._index)} records)"

    # helpers for subclasses
    @property
    def tolerance_s(self) -> float:
        return float(self.options.get("label_tolerance_s", DEFAULT_LABEL_TOLERANCE_S))

    def _fps(self, frames: VideoFileFrames, override: float | None) -> float:
        """Frame rate: the configured override, else the container's; missing or 0 is an error."""
        if override is not None:
            fps = float(override)
            if not np.isfinite(fps) or fps <= 0:
                raise DatasetFormatError(frames.path, f"configured fps must be > 0, got {override}")
            return fps
        if frames.container_fps <= 0:
            raise DatasetFormatError(frames.path, "frame rate missing or 0 in the video container; set the loader's fps option")
        return frames.container_fps


def _paths_in(info: Any) -> Iterator[Path]:
    if isinstance(info, Path):
        if info.is_dir():
            for dirpath, dirnames, filenames in os.walk(info):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                yield from (Path(dirpath) / f for f in filenames if not f.startswith("."))
        else:
            yield info
    elif isinstance(info, Mapping):
        for v in info.values():
            yield from _paths_in(v)
    elif isinstance(info, (list, tuple)):
        for v in info:
            yield from _paths_in(v)


def sorted_naturally(paths: Sequence[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: natural_key(p.name))
