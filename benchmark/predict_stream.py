"""The streaming half of ``rppg-bench predict`` (:mod:`benchmark.predict`): frames in, face crops,
the method on overlapping chunks, a BVP out; memory flat in the video's duration.

**Streaming.** Frames are decoded block by block; each frame is cropped to the face box and resized
(``cv2.INTER_AREA``) as in preprocessing, then kept in a ring buffer of one chunk. The method runs on
overlapping chunks (``chunk_s`` 30 s, ``overlap_s`` 5 s for training-free methods; the model's own
clip length for neural ones); each chunk's output is detrended, band-passed, standardised and
overlap-added with linear cross-fades. Memory is therefore one chunk of crops plus a few floats per
frame, whatever the duration. Neural frame transforms use the chunk's statistics (the benchmark
uses the whole record's, which a stream does not have).

**Skin mask** (training-free methods): in each crop, non-skin pixels (YCrCb thresholds) are replaced
by the mean skin colour (:func:`fill_non_skin`), so hair, eyes and background that enter a moving
crop do not add their own colour changes; neural methods get the crop as trained.

**Face box.** OpenCV's Haar cascade (as preprocessing; :func:`detect` adds a second cascade where
that one finds nothing) once per ``detect_every_s`` (1 s); the crop
is the coordinate-wise median of the last 5 detections, scaled ×``box_coef`` about its centre (1.5
for neural methods, as in preprocessing; 0.7 for training-free ones, see
:data:`TRAINING_FREE_BOX_COEF`) and moved only when it shifts by more than 5 % of its width. A second
whose detection fails keeps the last box and is counted as "no face"; frames before the first
detection use the full frame. No-face policy (as preprocessing, per video): ``error`` (default) —
a video without any detected face fails; ``full_frame`` — processed on the full frame;
``skip_record`` — skipped and listed.

**Live** (``--live`` with a file, fed at its frame rate by a reader thread; ``source=camera:N`` for
a webcam): the method runs on the last ``window_s`` of crops every ``stride_s`` and one line with the
HR, its quality, the latency (last frame of the window arrived → HR printed) and the backlog is
printed per stride; the same files are written at the end.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import signal as sig
from benchmark.vitals import band_for
from protocols.base import DatasetFormatError

#: Frame rates accepted (a container stating another rate is an error).
MIN_FPS, MAX_FPS = 5.0, 240.0

#: Shortest video (s) that gives an HR.
MIN_SECONDS = 5.0

NO_FACE = ("error", "full_frame", "skip_record")

#: Face box scale for training-free methods: the central 70 % of the Haar box (forehead, cheeks, nose;
#: little hair or background). Measured on a synthetic still video (v00 of ``predict_check``): median
#: window SNR 2.4 dB at ×1.5 (preprocessing's toolbox default), 4.8 at ×1.0, 9.3 at ×0.7, 7.2 at ×0.6.
#: Neural methods keep ×1.5: their checkpoints were trained on such crops.
TRAINING_FREE_BOX_COEF = 0.7


@dataclass
class PredictConfig:
    window_s: float = 10.0
    stride_s: float = 1.0
    chunk_s: float = 30.0
    overlap_s: float = 5.0
    size: int | None = None  # None: the method's input size (training-free methods: 72, as preprocessing)
    box_coef: float | None = None  # None: 1.5 for neural methods (as they were trained), 0.7 for training-free ones
    detect_every_s: float = 1.0
    box_median: int = 5  # the crop is the median of the last this many detections
    no_face: str = "error"
    fps: float | None = None  # None: the container's frame rate
    report: bool = True
    skin_mask: bool | None = None  # None: on for training-free methods (see :func:`fill_non_skin`)

    def __post_init__(self) -> None:
        for k in ("window_s", "stride_s", "chunk_s", "detect_every_s", "box_coef"):
            if getattr(self, k) is None:
                continue
            v = float(getattr(self, k))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"predict: {k} must be > 0, got {getattr(self, k)!r}")
        if not 0 <= self.overlap_s < self.chunk_s:
            raise ValueError(f"predict: overlap_s must be in [0, chunk_s), got {self.overlap_s}")
        if self.window_s < MIN_SECONDS:
            raise ValueError(f"predict: window_s must be >= {MIN_SECONDS} s (HR needs several beats), got {self.window_s}")
        if self.no_face not in NO_FACE:
            raise ValueError(f"predict: no_face must be one of {'|'.join(NO_FACE)}, got {self.no_face!r}")
        if self.size is not None and int(self.size) < 8:
            raise ValueError(f"predict: size must be >= 8, got {self.size}")


@dataclass
class MethodInfo:
    method: Any
    name: str
    neural: bool
    frames: int | None  # neural clip length
    size: int  # face crop side
    transforms: tuple[str, ...]
    checkpoint: str | None
    shape_source: str
    trained_fps: float | None = None

    def shape(self) -> dict[str, Any]:
        return {"frames": self.frames, "size": self.size, "transforms": list(self.transforms), "source": self.shape_source}


#: Frame height the face detector searches at (an integer downscale of taller frames, see :func:`detect`).
DETECT_HEIGHT = 240


def detect(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """Preprocessing's Haar face box (:func:`protocols.face_box.detect_face`, OpenCV's default frontal
    cascade); when it finds nothing, OpenCV's ``haarcascade_frontalface_alt`` (also shipped with
    opencv-python) is tried. On the synthetic acceptance videos the default cascade missed one face in
    every frame that ``alt`` found in 8 of 10 probed frames; where the default finds a face the box is
    preprocessing's, up to the detection downscale."""
    import cv2

    from protocols.face_box import detect_face

    # Frames are searched at an integer downscale to about DETECT_HEIGHT rows (640×480 → 320×240,
    # 1920×1080 → 480×270): the cascade's cost grows with the pixel count (88 → 35 ms per 640×480
    # frame here), and its 30-px smallest face is then about 1/8 of the frame height — smaller than
    # a face framed for rPPG (a smaller one gives too few skin pixels anyway).
    k = max(1, int(frame.shape[0] // DETECT_HEIGHT))
    small = frame if k == 1 else cv2.resize(frame, (frame.shape[1] // k, frame.shape[0] // k), interpolation=cv2.INTER_AREA)
    b = detect_face(small, fallback_alt=True)
    if b is None:
        return None
    return tuple(int(v) * k for v in b)  # type: ignore[return-value]


class FaceTracker:
    """Haar face box once per ``detect_every_s``; crop = median of the last 5 detections, enlarged."""

    def __init__(self, fps: float, height: int, width: int, cfg: PredictConfig, coef: float = 1.5):
        self.every = max(1, int(round(cfg.detect_every_s * fps)))
        self.h, self.w, self.coef = height, width, coef
        self.recent: deque[tuple[int, int, int, int]] = deque(maxlen=max(1, int(cfg.box_median)))
        self.found: list[bool] = []  # one per detection slot (``every`` frames)
        self.crop: tuple[int, int, int, int] | None = None
        self.thumb: np.ndarray | None = None  # frame of the first detection, downscaled, with its box
        self.thumb_box: tuple[int, int, int, int] | None = None

    def box(self, frame: np.ndarray, idx: int) -> tuple[int, int, int, int]:
        from protocols.face_box import enlarge_box

        if idx % self.every == 0:
            b = detect(frame)
            self.found.append(b is not None)
            if b is not None:
                self.recent.append(b)
                med = tuple(int(round(v)) for v in np.median(np.asarray(self.recent, dtype=np.float64), axis=0))
                new = enlarge_box(med, self.coef, self.h, self.w)  # type: ignore[arg-type]
                # hysteresis: a crop that moved by under 5 % of its width is kept, so a still face is
                # cropped identically (each one-pixel change of the box is a step in the colour means)
                if self.crop is None or max(abs(a - b) for a, b in zip(new, self.crop)) > 0.05 * (self.crop[2] - self.crop[0]):
                    self.crop = new
                if self.thumb is None:
                    self._keep_thumb(frame, self.crop)
            elif self.thumb is None and idx == 0:
                self._keep_thumb(frame, None)
        return self.crop if self.crop is not None else (0, 0, self.w, self.h)

    def _keep_thumb(self, frame: np.ndarray, crop: tuple[int, int, int, int] | None) -> None:
        import cv2

        scale = min(1.0, 320.0 / max(frame.shape[1], 1))
        self.thumb = cv2.resize(frame, (max(1, int(frame.shape[1] * scale)), max(1, int(frame.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA)
        self.thumb_box = None if crop is None else tuple(int(round(v * scale)) for v in crop)  # type: ignore[assignment]

    def face_per_frame(self, n: int) -> np.ndarray:
        return np.repeat(np.asarray(self.found, dtype=bool), self.every)[:n]

    def coverage(self) -> float:
        return float(np.mean(self.found)) if self.found else 0.0


def fill_non_skin(crop: np.ndarray) -> None:
    """Replace the crop's non-skin pixels (in place) by the mean colour of its skin pixels, so that
    a spatial mean — all a training-free method takes from a frame — is the mean over skin only.
    Skin: YCrCb with 133 ≤ Cr ≤ 173 and 77 ≤ Cb ≤ 127 (Chai & Ngan 1999, IEEE TCSVT 9(4):551). Hair,
    eyes and background entering a moving crop then do not add their own colour changes. A crop with
    under 10 % skin pixels is left as it is."""
    import cv2

    ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    skin = cv2.inRange(ycc, (0, 133, 77), (255, 173, 127)).astype(bool)
    n = int(skin.sum())
    if n < 0.1 * skin.size or n == skin.size:
        return
    crop[~skin] = crop[skin].mean(axis=0).round().astype(np.uint8)


class BVPStream:
    """Face crops in, overlap-added BVP out: the method runs on chunks of ``chunk`` frames every
    ``chunk - overlap`` frames; only one chunk of crops is kept (a ring buffer)."""

    def __init__(self, info: MethodInfo, fps: float, chunk: int, overlap: int,
                 on_chunk: Callable[[int, int, np.ndarray], None] | None = None):
        self.info, self.fps = info, float(fps)
        self.chunk, self.overlap = int(chunk), int(overlap)
        self.step = max(1, self.chunk - self.overlap)
        s = info.size
        self.ring = np.empty((self.chunk, s, s, 3), np.uint8)
        self.n = 0
        self.next_start = 0
        self.done_until = 0  # frames [0, done_until) are covered by a processed chunk
        self._acc = np.zeros(0)
        self._wsum = np.zeros(0)
        self.on_chunk = on_chunk
        self.seconds = 0.0  # time spent in the method

    def push(self, crop: np.ndarray) -> None:
        self.ring[self.n % self.chunk] = crop
        self.n += 1
        if self.n - self.next_start == self.chunk:
            self._run(self.next_start, self.n)
            self.next_start += self.step

    def finish(self) -> np.ndarray:
        if self.done_until < self.n:
            self._run(max(0, self.n - self.chunk), self.n)
        out = self._acc[: self.n] / np.maximum(self._wsum[: self.n], 1e-12)
        return out

    def _frames(self, start: int, stop: int) -> np.ndarray:
        idx = np.arange(start, stop) % self.chunk
        return self.ring[idx]

    def _run(self, start: int, stop: int) -> None:
        t0 = time.perf_counter()
        y = self._method(self._frames(start, stop))
        y = sig.postprocess(y, self.fps, band_for(self.fps), integrate=self.info.neural and _is_derivative(self.info.method))
        y = sig.standardize(y)
        n = stop - start
        w = np.ones(n)
        ov = min(self.overlap, n // 2)
        if ov > 0:
            ramp = (np.arange(ov) + 1.0) / (ov + 1.0)
            w[:ov], w[n - ov:] = ramp, ramp[::-1]
        if len(self._acc) < stop:
            grow = max(stop, 2 * len(self._acc))
            self._acc = np.concatenate([self._acc, np.zeros(grow - len(self._acc))])
            self._wsum = np.concatenate([self._wsum, np.zeros(grow - len(self._wsum))])
        self._acc[start:stop] += w * y
        self._wsum[start:stop] += w
        self.done_until = max(self.done_until, stop)
        self.seconds += time.perf_counter() - t0
        if self.on_chunk is not None:
            self.on_chunk(start, stop, y)

    def _method(self, frames: np.ndarray) -> np.ndarray:
        info = self.info
        if not info.neural:
            y = np.asarray(info.method.predict(frames, self.fps), dtype=np.float64)
            if y.shape != (len(frames),):
                raise ValueError(f"method {info.name!r} returned shape {y.shape} for {len(frames)} frames")
            return y
        import torch

        from benchmark.data import record_stats, transform_chunk

        m, T = info.method, int(info.frames or len(frames))
        x = frames if len(frames) >= T else np.concatenate([frames, np.repeat(frames[-1:], T - len(frames), 0)])
        stats = record_stats(x)
        clip = torch.from_numpy(transform_chunk(x, 0, T, info.transforms, stats))[None]
        model = m.inference_model().eval()
        with torch.no_grad():
            batch = {"frames": clip, "fps": torch.tensor([self.fps], dtype=torch.float32)}
            out = m.signal(m.forward(model, batch)).float().cpu().numpy()[0]
        return np.asarray(out[: len(frames)], dtype=np.float64)


def _is_derivative(method: Any) -> bool:
    return bool(getattr(method, "signal_is_derivative", False))


@dataclass
class VideoInput:
    path: str
    fps: float
    n_frames: int | None
    height: int
    width: int
    blocks: Callable[[], Iterator[np.ndarray]]


def open_video(path: str | Path, fps: float | None = None) -> VideoInput:
    """Open and check one video file: readable, colour, ≥ :data:`MIN_SECONDS`, a frame rate in
    [:data:`MIN_FPS`, :data:`MAX_FPS`]; each problem is a :class:`DatasetFormatError` naming the file."""
    from protocols.datasets._common import VideoFileFrames
    from protocols.face_box import block_frames

    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        raise DatasetFormatError(p, "empty file (0 bytes)")
    v = VideoFileFrames(p)
    rate = float(fps) if fps else v.container_fps
    if not rate:
        raise DatasetFormatError(p, "the container states no frame rate; give fps=")
    if not MIN_FPS <= rate <= MAX_FPS:
        raise DatasetFormatError(p, f"unsupported frame rate {rate:g} fps (supported: {MIN_FPS:g}–{MAX_FPS:g}; give fps= if the container is wrong)")
    if v.n_frames < MIN_SECONDS * rate:
        raise DatasetFormatError(p, f"too short: {v.n_frames} frame(s) = {v.n_frames / rate:.2f} s at {rate:g} fps; "
                                    f"HR needs at least {MIN_SECONDS:g} s")
    blk = block_frames(v.height, v.width)
    return VideoInput(str(p), rate, v.n_frames, v.height, v.width, lambda: v.iter_blocks(blk))


@dataclass
class StreamResult:
    bvp: np.ndarray
    fps: float
    face: np.ndarray  # (T,) bool: a face was detected in this frame's second
    coverage: float
    thumb: np.ndarray | None
    thumb_box: tuple[int, int, int, int] | None
    method_seconds: float
    seconds: float
    frame_height: int
    frame_width: int
    box_coef: float = 1.5


def run_stream(frames: Iterable[np.ndarray], fps: float, height: int, width: int, info: MethodInfo, cfg: PredictConfig, *,
               chunk: int | None = None, overlap: int | None = None, progress: Any = None,
               on_chunk: Callable[[int, int, np.ndarray], None] | None = None, where: str = "video") -> StreamResult:
    """Face box → crop → method on chunks, for frames arriving one at a time (RGB uint8 (H, W, 3))."""
    import cv2

    if info.neural:
        chunk = chunk or int(info.frames or 0)
        overlap = overlap if overlap is not None else chunk // 2
    else:
        chunk = chunk or int(round(cfg.chunk_s * fps))
        overlap = overlap if overlap is not None else int(round(cfg.overlap_s * fps))
    coef = cfg.box_coef if cfg.box_coef is not None else (1.5 if info.neural else TRAINING_FREE_BOX_COEF)
    tracker = FaceTracker(fps, height, width, cfg, coef)
    mask_skin = cfg.skin_mask if cfg.skin_mask is not None else not info.neural
    stream = BVPStream(info, fps, chunk, overlap, on_chunk)
    s = info.size
    crop = np.empty((s, s, 3), np.uint8)
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        if frame.shape != (height, width, 3):
            raise DatasetFormatError(where, f"frame {i} has shape {frame.shape}, expected {(height, width, 3)}")
        x0, y0, x1, y1 = tracker.box(frame, i)
        cv2.resize(frame[y0:y1, x0:x1], (s, s), dst=crop, interpolation=cv2.INTER_AREA)
        if mask_skin:
            fill_non_skin(crop)
        stream.push(crop)
        if progress is not None:
            progress.update(1)
    n = stream.n
    if n < MIN_SECONDS * fps:
        raise DatasetFormatError(where, f"too short: {n} frame(s) = {n / fps:.2f} s; HR needs at least {MIN_SECONDS:g} s")
    bvp = stream.finish()
    return StreamResult(bvp, fps, tracker.face_per_frame(n), tracker.coverage(), tracker.thumb, tracker.thumb_box,
                        stream.seconds, time.perf_counter() - t0, height, width, coef)


def _frames_of(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for block in blocks:
        yield from block


def paced_frames(open_source: Callable[[], Iterator[np.ndarray]], fps: float, realtime: bool, stats: dict[str, Any],
                 max_queue: int = 10_000) -> Iterator[np.ndarray]:
    """Frames from a reader thread. ``realtime``: a file is released at its frame rate (as a camera
    would deliver it). Each frame's arrival time is kept (``stats["arrival"]``) and the backlog
    (frames arrived, not yet taken) sampled (``stats["backlog"]``)."""
    import queue

    q: queue.Queue = queue.Queue(maxsize=max_queue)
    stop = threading.Event()
    arrival: list[float] = stats.setdefault("arrival", [])
    err: list[BaseException] = []

    def reader() -> None:
        t0 = time.perf_counter()
        try:
            for i, f in enumerate(open_source()):
                if stop.is_set():
                    break
                if realtime:
                    wait = t0 + i / fps - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                q.put((time.perf_counter(), f))
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            err.append(e)
        finally:
            q.put(None)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    backlog: list[int] = stats.setdefault("backlog", [])
    stats.setdefault("wait_s", 0.0)
    try:
        while True:
            t = time.perf_counter()
            item = q.get()
            stats["wait_s"] += time.perf_counter() - t  # idle: waiting for the next frame
            if item is None:
                break
            arrival.append(item[0])
            backlog.append(q.qsize())
            yield item[1]
    finally:
        stop.set()
    if err:
        raise err[0]


def camera_source(spec: str, duration_s: float | None) -> tuple[Callable[[], Iterator[np.ndarray]], float, int, int]:
    """``camera:N`` → (frame iterator factory, fps, height, width) of OpenCV's capture device N."""
    import cv2

    idx = int(spec.split(":", 1)[1] or 0)
    cap = cv2.VideoCapture(idx)
    if not cap.isOpened():
        raise DatasetFormatError(spec, "cannot open the camera")
    ok, first = cap.read()
    if not ok:
        cap.release()
        raise DatasetFormatError(spec, "the camera delivered no frame")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
    fps = fps if MIN_FPS <= fps <= MAX_FPS else 30.0

    def frames() -> Iterator[np.ndarray]:
        t0 = time.perf_counter()
        try:
            yield cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
            while duration_s is None or time.perf_counter() - t0 < duration_s:
                ok, f = cap.read()
                if not ok:
                    break
                yield cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return frames, fps, int(first.shape[0]), int(first.shape[1])
