"""``rppg-bench predict``: the pulse, HR over time, HRV and respiration of your own videos (no label).

    rppg-bench predict PATH [method=pos] [method.KEY=VALUE ...] [method.checkpoint=FILE] [out=DIR]
                            [window_s=10] [stride_s=1] [no_face=error|full_frame|skip_record] [--live]
    rppg-bench predict source=camera:0 [duration_s=60] ...        # a webcam, live

PATH is a video file or a folder of them (extensions of the ``folder`` loader). Per video, into
``DIR/<stem>/`` (default ``DIR`` = ``predictions``):

* ``bvp.csv`` — ``t_s, bvp``: the recovered pulse wave (standardised, band-passed 42–180 bpm);
* ``hr.csv`` — ``t_start_s, t_end_s, hr_bpm, quality, snr_db, prominence_db, face_fraction``: HR on
  sliding windows (``window_s`` long, every ``stride_s``) from the periodogram peak in 0.7–3 Hz.
  Quality indices per window: **spectral SNR** (power within the main lobe of the window's own HR
  peak and its 2nd harmonic over the rest of the band, :func:`benchmark.signal.snr_db`) and **peak
  prominence** (the HR peak's power over the next-highest spectral peak outside its main lobe, dB).
  ``quality``: ``no_face`` when a face was found in under half of the window's seconds, else
  ``good`` (SNR ≥ 3 dB and prominence ≥ 3 dB), ``poor`` (SNR < 0 dB or prominence < 1 dB) or ``fair``.
  The thresholds are heuristics set on synthetic videos (a 10-s window of white noise scores about
  −1 dB SNR and 0–2 dB prominence), not calibrated against real recordings;
* ``summary.json`` — median HR (windows with a face, ``poor`` ones left out when others exist),
  respiration rate, HRV (≥ 60 s), frames, fps, face coverage, method, checkpoint and input shape;
* ``report.png`` — first frame with the face box, a BVP excerpt, HR over time shaded by quality,
  beat-to-beat intervals.

Everything of a video is written into a hidden temporary folder that is renamed into place when
complete: a failed video leaves nothing in ``DIR``.

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

**HRV** (recordings ≥ 60 s): the BVP is band-passed to the recording's HR range ± 0.5 Hz
(:func:`beat_band`), band-limited-interpolated ×k to ≥ 240 Hz
(``scipy.signal.resample_poly``, so beat times are not quantised to the frame period), beats are
found with neurokit2's Elgendi detector, corrected with ``nk.signal_fixpeaks`` (Kubios: Lipponen &
Tarvainen 2019), and ``nk.hrv_time`` / ``nk.hrv_frequency`` give SDNN, RMSSD, pNN50 and LF/HF.
Limits: camera beats are noisier than ECG R peaks; RMSSD and pNN50 (beat-to-beat differences) are
the most sensitive to that noise, SDNN much less; LF (0.04–0.15 Hz) needs ≥ 2 min to be meaningful.

**Respiration** (recordings ≥ 30 s) comes from the BVP's respiratory modulations, not head motion:
the beat-to-beat frequency (respiratory sinus arrhythmia, RIFV) and amplitude (RIAV) series,
resampled at 4 Hz; their normalised Welch spectra are averaged (spectral fusion, after Karlen et al.
2013, IEEE TBME 60(7):1946) and the peak in 0.1–0.5 Hz (6–30 breaths/min) is the rate. Limits: it
needs visible RSA or amplitude modulation (weak in older subjects, absent when breath is held),
talking and motion at breathing rates confound it, and rates outside 6–30 /min are not found.

**Live** (``--live`` with a file, fed at its frame rate by a reader thread; ``source=camera:N`` for
a webcam): the method runs on the last ``window_s`` of crops every ``stride_s`` and one line with the
HR, its quality, the latency (last frame of the window arrived → HR printed) and the backlog is
printed per stride; the same files are written at the end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import signal as sig
from protocols.base import DatasetFormatError

#: Pass band (Hz) of the BVP and of the HR search: 42–180 bpm (own videos may include exercise).
BAND = (0.7, 3.0)
#: Frame rates accepted (a container stating another rate is an error).
MIN_FPS, MAX_FPS = 5.0, 240.0
#: Shortest video (s) that gives an HR.
MIN_SECONDS = 5.0
#: HRV only from recordings at least this long (s); respiration from RESP_MIN_S.
HRV_MIN_S, RESP_MIN_S = 60.0, 30.0
#: HRV is flagged unreliable when fewer windows than this are good or fair: on the synthetic
#: acceptance videos every still video whose SDNN came within 15 % had all windows good or fair,
#: and noisy beats only ever inflate SDNN and RMSSD.
HRV_MIN_QUALITY = 0.8
VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm")
NO_FACE = ("error", "full_frame", "skip_record")
#: Face box scale for training-free methods: the central 70 % of the Haar box (forehead, cheeks, nose;
#: little hair or background). Measured on a synthetic still video (v00 of ``predict_check``): median
#: window SNR 2.4 dB at ×1.5 (preprocessing's toolbox default), 4.8 at ×1.0, 9.3 at ×0.7, 7.2 at ×0.6.
#: Neural methods keep ×1.5: their checkpoints were trained on such crops.
TRAINING_FREE_BOX_COEF = 0.7
#: quality thresholds (dB), see the module docstring
GOOD_DB, POOR_SNR_DB, POOR_PROM_DB = 3.0, 0.0, 1.0


class NoFaceInVideo(DatasetFormatError):
    """No face was detected in the whole video and the no-face policy is ``error``."""


class SkippedVideo(Exception):
    """No face and ``no_face=skip_record``: the video is listed as skipped, not failed."""


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


# -- the method ----------------------------------------------------------------------------------
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


def build_predict_method(name: str, overrides: dict[str, Any], size: int | None = None) -> MethodInfo:
    """The method to run: a training-free one as configured, a neural one only with a checkpoint, at
    the checkpoint's input shape (:mod:`benchmark.shape_guard`) unless ``method.frames``/``size`` and
    ``method.allow_shape_change=true`` are given."""
    from benchmark.method import NeuralMethod
    from benchmark.registry import create_method, get_method_class
    from benchmark.shape_guard import checkpoint_shape, shape_text

    cls = get_method_class(name)
    cfg = dict(overrides)
    allow = bool(cfg.pop("allow_shape_change", False))
    if not (isinstance(cls, type) and issubclass(cls, NeuralMethod)):
        if "checkpoint" in cfg:
            raise ValueError(f"method {name!r} is training-free: it takes no method.checkpoint")
        return MethodInfo(create_method(name, **cfg), name, False, None, int(size or 72), (), None, "preprocessing default")
    ckpt = cfg.get("checkpoint")
    if not ckpt:
        raise ValueError(f"method {name!r} must be trained: give method.checkpoint=FILE (a checkpoint of "
                         f"`rppg-bench run method={name}` or a published rPPG-Toolbox .pth)")
    trained, source = checkpoint_shape(ckpt, cls)
    want = {k: cfg.get(k) for k in ("frames", "size")}
    for k in ("frames", "size"):
        if want[k] is not None and int(want[k]) != trained[k] and not allow:
            asked = {**trained, **{kk: int(v) for kk, v in want.items() if v is not None}}
            raise ValueError(f"{ckpt}: trained at {shape_text(trained)} ({source}); method.{k}={want[k]} would run it at "
                             f"{shape_text(asked)}. Drop the override or add method.allow_shape_change=true")
        if want[k] is None:
            cfg[k] = trained[k]
    method = create_method(name, **cfg)
    method.load_checkpoint(ckpt)
    spec = method.input_spec()
    return MethodInfo(method, name, True, spec.frames, spec.size, tuple(spec.transforms), str(ckpt), source,
                      trained.get("fps"))


# -- face box ------------------------------------------------------------------------------------
_ALT: Any = None
#: Widest frame the face detector searches at full resolution (see :func:`detect`).
DETECT_WIDTH = 320


def detect(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """Preprocessing's Haar face box (:func:`protocols.face_box.detect_face`, OpenCV's default frontal
    cascade); when it finds nothing, OpenCV's ``haarcascade_frontalface_alt`` (also shipped with
    opencv-python) is tried. On the synthetic acceptance videos the default cascade missed one face in
    every frame that ``alt`` found in 8 of 10 probed frames; where the default finds a face the box is
    preprocessing's, up to the detection downscale."""
    import cv2

    from protocols.face_box import detect_face

    # Frames wider than DETECT_WIDTH are searched at an integer downscale (640×480 → 320×240): the
    # cascade's cost grows with the pixel count (88 → ~25 ms per 640×480 frame here), and a face of
    # the cascade's 30-px minimum at 320 px is 60 px at 640 — smaller than any webcam framing.
    k = max(1, int(frame.shape[1] // DETECT_WIDTH))
    small = frame if k == 1 else cv2.resize(frame, (frame.shape[1] // k, frame.shape[0] // k), interpolation=cv2.INTER_AREA)
    b = detect_face(small)
    if b is None:
        global _ALT
        if _ALT is None:
            _ALT = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt.xml"))
        faces = _ALT.detectMultiScale(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY))
        if len(faces) == 0:
            return None
        b = max(faces, key=lambda f: f[2])
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


# -- streaming method runs -----------------------------------------------------------------------
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
        self.acc: list[np.ndarray] = []  # per-frame weighted sums, grown in blocks
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


def band_for(fps: float) -> tuple[float, float]:
    """:data:`BAND`, its upper edge kept below Nyquist for low frame rates.

    >>> band_for(30.0), band_for(5.0)
    ((0.7, 3.0), (0.7, 2.25))
    """
    return (BAND[0], min(BAND[1], 0.45 * float(fps)))


# -- video input ---------------------------------------------------------------------------------
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


# -- one video -----------------------------------------------------------------------------------
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


def _frames_of(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for block in blocks:
        yield from block


# -- analysis ------------------------------------------------------------------------------------
def prominence_db(x: np.ndarray, fps: float, band: tuple[float, float]) -> float:
    """Power of the highest spectral peak in ``band`` over the next-highest peak outside its main lobe
    (±2·fps/N Hz of a Hann periodogram), dB; ``inf`` when there is no second peak."""
    import scipy.signal

    f, p = sig.power_spectrum(x, fps)
    m = (f >= band[0]) & (f <= band[1])
    fb, pb = f[m], p[m]
    if len(pb) < 3 or pb.max() <= 0:
        return 0.0
    k = int(np.argmax(pb))
    lobe = 2.0 * fps / len(x)
    pk, _ = scipy.signal.find_peaks(pb)
    others = [pb[j] for j in pk if abs(fb[j] - fb[k]) > lobe]
    if not others or max(others) <= 0:
        return float("inf")
    return float(10 * np.log10(pb[k] / max(others)))


def hr_windows(bvp: np.ndarray, fps: float, face: np.ndarray, window_s: float, stride_s: float) -> list[dict[str, Any]]:
    """HR and quality on sliding windows (one window of the whole signal when shorter than ``window_s``)."""
    n = len(bvp)
    w = min(n, int(round(window_s * fps)))
    st = max(1, int(round(stride_s * fps)))
    band = band_for(fps)
    rows = []
    for s in range(0, n - w + 1, st):
        seg = bvp[s : s + w]
        hr = sig.hr_spectrum(seg, fps, band)
        snr = sig.snr_db(seg, fps, hr, band)
        prom = prominence_db(seg, fps, band)
        ff = float(np.mean(face[s : s + w])) if len(face) else 0.0
        if ff < 0.5:
            q = "no_face"
        elif snr >= GOOD_DB and prom >= GOOD_DB:
            q = "good"
        elif snr < POOR_SNR_DB or prom < POOR_PROM_DB:
            q = "poor"
        else:
            q = "fair"
        rows.append({"t_start_s": round(s / fps, 3), "t_end_s": round((s + w) / fps, 3), "hr_bpm": round(hr, 2), "quality": q,
                     "snr_db": round(snr, 2), "prominence_db": round(prom, 2) if math.isfinite(prom) else 99.0,
                     "face_fraction": round(ff, 3)})
    return rows


def median_hr(rows: Sequence[dict[str, Any]]) -> tuple[float, str]:
    """Median HR of the windows with a face, leaving out ``poor`` ones when any other is left."""
    face = [r for r in rows if r["quality"] != "no_face"]
    ok = [r for r in face if r["quality"] != "poor"]
    use, what = (ok, "windows with a face, not poor") if ok else ((face, "windows with a face (all poor)") if face else (list(rows), "all windows (no face)"))
    return (float(np.median([r["hr_bpm"] for r in use])) if use else float("nan")), f"{what}: {len(use)} of {len(rows)}"


def detect_beats(bvp: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Beat times (s) and amplitudes of the BVP: band-limited interpolation to ≥ 240 Hz, neurokit2's
    Elgendi detector, Kubios artefact correction. Returns (peak indices at the upsampled rate, the
    upsampled signal, its rate)."""
    import neurokit2 as nk
    import scipy.signal

    up = max(1, int(math.ceil(240.0 / fps)))
    fs = float(fps) * up
    x = scipy.signal.resample_poly(np.asarray(bvp, dtype=np.float64), up, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            peaks = np.asarray(nk.ppg_findpeaks(x, sampling_rate=int(round(fs)), method="elgendi")["PPG_Peaks"], dtype=int)
            if len(peaks) >= 4:
                _, peaks = nk.signal_fixpeaks(peaks, sampling_rate=int(round(fs)), iterative=True, method="Kubios")
                peaks = np.unique(np.asarray(peaks, dtype=int))
        except (IndexError, ValueError, TypeError):
            peaks = np.array([], dtype=int)
    peaks = peaks[(peaks >= 0) & (peaks < len(x))]
    return peaks, x, fs


def beat_band(bvp: np.ndarray, fps: float, rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """The BVP band-passed (Butterworth order 2, zero phase) to the HR range of the recording ± 0.5 Hz
    for beat detection: the 10th–90th percentile of the window HRs with a face. ±0.5 Hz keeps the
    respiratory sidebands (RSA up to 30 /min) that carry HRV and respiration, and removes the
    broadband noise that otherwise moves each detected beat (on the synthetic acceptance videos the
    beat-interval jitter fell from about 100 to 50 ms rms)."""
    hrs = [r["hr_bpm"] for r in rows if r["quality"] != "no_face"] or [r["hr_bpm"] for r in rows]
    if not hrs:
        return bvp
    lo, hi = np.percentile(hrs, [10, 90]) / 60.0
    band = band_for(fps)
    return sig.bandpass(bvp, fps, (max(band[0] - 0.2, lo - 0.5), min(band[1], hi + 0.5)), order=2)


def hrv(peaks: np.ndarray, fs: float) -> dict[str, float]:
    """SDNN, RMSSD (ms), pNN50 (%), LF/HF of beat indices at rate ``fs`` (neurokit2)."""
    import neurokit2 as nk

    rate = int(round(fs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = nk.hrv_time(peaks, sampling_rate=rate)
        try:
            f = nk.hrv_frequency(peaks, sampling_rate=rate)
            lfhf = float(f["HRV_LFHF"].iloc[0])
        except (IndexError, ValueError, TypeError, KeyError):
            lfhf = float("nan")
    out = {"sdnn_ms": float(t["HRV_SDNN"].iloc[0]), "rmssd_ms": float(t["HRV_RMSSD"].iloc[0]),
           "pnn50_pct": float(t["HRV_pNN50"].iloc[0]), "lf_hf": lfhf, "n_beats": int(len(peaks))}
    return {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else (v if isinstance(v, int) else None)) for k, v in out.items()}


def respiration_rate(peaks: np.ndarray, x: np.ndarray, fs: float) -> float | None:
    """Breaths/min from the RIFV and RIAV series of the beats (spectral fusion; module docstring)."""
    import scipy.interpolate
    import scipy.signal

    if len(peaks) < 8:
        return None
    tb = peaks / fs
    ibi = np.diff(tb)
    tm = tb[1:]
    amp = x[peaks[1:]] - np.array([x[a:b].min() for a, b in zip(peaks[:-1], peaks[1:])])
    rs = 4.0
    grid = np.arange(tm[0], tm[-1], 1 / rs)
    if len(grid) < 64:
        return None
    spectra = []
    for series in (60.0 / ibi, amp):
        y = scipy.interpolate.CubicSpline(tm, series)(grid)
        y = scipy.signal.detrend(y)
        if not np.any(y):
            continue
        f, p = scipy.signal.welch(y, rs, nperseg=min(len(y), 256), nfft=max(1024, len(y)))
        m = (f >= 0.1) & (f <= 0.5)
        if p[m].sum() > 0:
            spectra.append(p / p[m].sum())
    if not spectra:
        return None
    pm = np.mean(spectra, axis=0)
    m = (f >= 0.1) & (f <= 0.5)
    return round(float(f[m][np.argmax(pm[m])] * 60.0), 2)


def analyse(res: StreamResult, cfg: PredictConfig) -> dict[str, Any]:
    fps, bvp = res.fps, res.bvp
    rows = hr_windows(bvp, fps, res.face, cfg.window_s, cfg.stride_s)
    med, med_note = median_hr(rows)
    duration = len(bvp) / fps
    peaks, x, fs = detect_beats(beat_band(bvp, fps, rows), fps)
    out: dict[str, Any] = {"rows": rows, "hr_bpm": round(med, 2), "hr_from": med_note, "peaks_s": peaks / fs, "duration_s": duration,
                           "beat_signal": (x, fs)}
    out["respiration"] = {"rate_per_min": respiration_rate(peaks, x, fs) if duration >= RESP_MIN_S else None,
                          "from": "BVP respiratory modulation: beat-interval (RSA) and beat-amplitude series, spectral fusion, 6–30 /min",
                          "min_duration_s": RESP_MIN_S}
    if duration >= HRV_MIN_S and len(peaks) >= 30:
        ok = float(np.mean([r["quality"] in ("good", "fair") for r in rows])) if rows else 0.0
        out["hrv"] = {**hrv(peaks, fs), "from": "beats of the BVP (×{} interpolation, Elgendi + Kubios fixpeaks)".format(int(fs / fps)),
                      "good_or_fair_windows": round(ok, 3), "reliable": ok >= HRV_MIN_QUALITY,
                      "note": None if ok >= HRV_MIN_QUALITY else
                      f"only {ok:.0%} of the windows are good or fair (< {HRV_MIN_QUALITY:.0%}): beat times are noisy and "
                      "SDNN/RMSSD overestimated"}
    else:
        out["hrv"] = {"skipped": f"needs >= {HRV_MIN_S:g} s and >= 30 beats (got {duration:.1f} s, {len(peaks)} beats)"}
    return out


# -- outputs -------------------------------------------------------------------------------------
def _write_outputs(dest: Path, res: StreamResult, ana: dict[str, Any], summary: dict[str, Any], cfg: PredictConfig) -> None:
    """All files of one video into a hidden temp folder beside ``dest``, then renamed to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        t = np.arange(len(res.bvp)) / res.fps
        np.savetxt(tmp / "bvp.csv", np.column_stack([t, res.bvp]), delimiter=",", header="t_s,bvp", comments="", fmt=["%.4f", "%.5f"])
        cols = ["t_start_s", "t_end_s", "hr_bpm", "quality", "snr_db", "prominence_db", "face_fraction"]
        lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in ana["rows"]]
        (tmp / "hr.csv").write_text("\n".join(lines) + "\n")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
        if cfg.report:
            _report(tmp / "report.png", res, ana, summary)
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _report(path: Path, res: StreamResult, ana: dict[str, Any], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(11, 7))
    gs = fig.add_gridspec(2, 3)
    ax0 = fig.add_subplot(gs[0, 0])
    if res.thumb is not None:
        ax0.imshow(res.thumb)
        if res.thumb_box is not None:
            x0, y0, x1, y1 = res.thumb_box
            ax0.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=2))
    ax0.set_title(f"face box (coverage {summary['face_coverage']:.0%})")
    ax0.axis("off")
    ax1 = fig.add_subplot(gs[0, 1:])
    n = min(len(res.bvp), int(10 * res.fps))
    mid = max(0, len(res.bvp) // 2 - n // 2)
    t = np.arange(mid, mid + n) / res.fps
    ax1.plot(t, res.bvp[mid : mid + n], lw=1, label="BVP")
    xb, fb = ana["beat_signal"]
    i0, i1 = int(t[0] * fb), int(t[-1] * fb) + 1 if n else 0
    if i1 > i0:
        tb = np.arange(i0, min(i1, len(xb))) / fb
        yb = sig.standardize(xb[i0 : i0 + len(tb)])
        ax1.plot(tb, yb, lw=0.8, alpha=0.8, label="beat-detection band")
        pk = ana["peaks_s"][(ana["peaks_s"] >= tb[0]) & (ana["peaks_s"] <= tb[-1])]
        if len(pk):
            ax1.plot(pk, np.interp(pk, tb, yb), "r.", ms=6, label="beats")
    ax1.legend(loc="upper right", fontsize=7)
    ax1.set(title="BVP excerpt (10 s) with detected beats", xlabel="time (s)")
    ax2 = fig.add_subplot(gs[1, :2])
    rows = ana["rows"]
    colors = {"good": "#c7e9c0", "fair": "#fdd49e", "poor": "#fcbba1", "no_face": "#d9d9d9"}
    st = rows[1]["t_start_s"] - rows[0]["t_start_s"] if len(rows) > 1 else 1.0
    for r in rows:
        c = (r["t_start_s"] + r["t_end_s"]) / 2
        ax2.axvspan(c - st / 2, c + st / 2, color=colors[r["quality"]], lw=0)
    ax2.plot([(r["t_start_s"] + r["t_end_s"]) / 2 for r in rows], [r["hr_bpm"] for r in rows], "k.-", ms=3)
    from matplotlib.patches import Patch

    ax2.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], loc="upper right", fontsize=7, ncol=4,
               title="window quality", title_fontsize=7)
    ax2.set(title=f"HR over time (median {summary['hr_bpm']} bpm)", xlabel="window centre (s)", ylabel="HR (bpm)")
    ax3 = fig.add_subplot(gs[1, 2])
    pk = np.asarray(ana["peaks_s"])
    if len(pk) > 2:
        ax3.plot(pk[1:], np.diff(pk) * 1000, ".-", ms=3)
    ax3.set(title="beat intervals", xlabel="time (s)", ylabel="ms")
    fig.suptitle(f"{summary['video']} — {summary['method']['name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def summarize(name: str, res: StreamResult, ana: dict[str, Any], info: MethodInfo, cfg: PredictConfig, n_frames: int) -> dict[str, Any]:
    return {
        "video": name, "hr_bpm": ana["hr_bpm"], "hr_from": ana["hr_from"], "respiration": ana["respiration"], "hrv": ana["hrv"],
        "frames": n_frames, "fps": res.fps, "duration_s": round(n_frames / res.fps, 3), "frame_size": [res.frame_height, res.frame_width],
        "face_coverage": round(res.coverage, 4), "no_face_policy": cfg.no_face, "box_coef": res.box_coef,
        "no_face_seconds": [i for i, f in enumerate(res.face[:: max(1, int(round(res.fps)))]) if not f],
        "method": {"name": info.name, "kind": "neural" if info.neural else "unsupervised", "config": _method_cfg(info.method)},
        "checkpoint": info.checkpoint, "input_shape": info.shape(), "trained_fps": info.trained_fps,
        "warnings": [w for w in [fps_warning(info, res.fps)] if w],
        "window_s": cfg.window_s, "stride_s": cfg.stride_s, "band_hz": list(band_for(res.fps)),
        "seconds": round(res.seconds, 2), "frames_per_s": round(n_frames / res.seconds, 1) if res.seconds > 0 else None,
    }


def _method_cfg(method: Any) -> dict[str, Any]:
    import dataclasses

    try:
        return json.loads(json.dumps(dataclasses.asdict(method.cfg), default=str))
    except TypeError:
        return {}


def predict_video(path: str | Path, info: MethodInfo, cfg: PredictConfig, out_root: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Run one video end to end and write ``out_root/<stem>/``; returns its summary."""
    from tqdm.auto import tqdm

    vid = open_video(path, cfg.fps)
    bar = tqdm(total=vid.n_frames, desc=Path(path).name, unit="frame", disable=not progress, leave=False)
    try:
        res = run_stream(_frames_of(vid.blocks()), vid.fps, vid.height, vid.width, info, cfg, progress=bar, where=str(path))
    finally:
        bar.close()
    _check_face(res, cfg, path)
    ana = analyse(res, cfg)
    summary = summarize(Path(path).name, res, ana, info, cfg, len(res.bvp))
    _write_outputs(Path(out_root) / Path(path).stem, res, ana, summary, cfg)
    return summary


def fps_warning(info: MethodInfo, fps: float) -> str | None:
    """A note when a checkpoint trained at one frame rate runs on video at another (> 10 % apart):
    its temporal filters then see other pulse frequencies. Frames are not resampled.

    >>> fps_warning(MethodInfo(None, "m", True, 128, 72, (), "c.pt", "", 30.0), 15.0)
    'checkpoint c.pt was trained on 30 fps video; this video is 15 fps (frames are not resampled)'
    """
    if not info.trained_fps or abs(fps - info.trained_fps) <= 0.1 * info.trained_fps:
        return None
    return f"checkpoint {info.checkpoint} was trained on {info.trained_fps:g} fps video; this video is {fps:g} fps (frames are not resampled)"


def _check_face(res: StreamResult, cfg: PredictConfig, path: Any) -> None:
    if res.coverage > 0:
        return
    what = f"no face found in any of the {len(np.asarray(res.face)[:: max(1, int(round(res.fps * cfg.detect_every_s)))])} detection attempts (one per {cfg.detect_every_s:g} s)"
    if cfg.no_face == "error":
        raise NoFaceInVideo(path, f"{what}; no_face=error (no_face=full_frame uses the whole frame, skip_record skips it)")
    if cfg.no_face == "skip_record":
        raise SkippedVideo(f"{path}: {what} (no_face=skip_record)")


def summary_line(s: dict[str, Any]) -> str:
    h = s["hrv"]
    hrv_txt = (f"SDNN {h['sdnn_ms']} ms, RMSSD {h['rmssd_ms']} ms" + ("" if h.get("reliable") else " (unreliable: noisy beats)")
               if "sdnn_ms" in h else "HRV: too short")
    rr = s["respiration"]["rate_per_min"]
    warn = "".join(f"\n  warning: {w}" for w in s.get("warnings", []))
    return (f"{s['video']}: HR {s['hr_bpm']} bpm, respiration {rr if rr is not None else '-'} /min, {hrv_txt}, "
            f"face {s['face_coverage']:.0%}, {s['frames']} frames @ {s['fps']:g} fps, {s['frames_per_s']} frames/s" + warn)


# -- live ----------------------------------------------------------------------------------------
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


def predict_live(source: str, info: MethodInfo, cfg: PredictConfig, out_root: str | Path, *, realtime: bool = True,
                 duration_s: float | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Live path: HR of the last ``window_s`` printed every ``stride_s``; returns the summary with
    ``live`` figures (latency, backlog, real-time factor)."""
    if source.startswith("camera:"):
        factory, fps, h, w = camera_source(source, duration_s)
        name = source.replace(":", "_")
    else:
        vid = open_video(source, cfg.fps)
        factory, fps, h, w, name = (lambda: _frames_of(vid.blocks())), vid.fps, vid.height, vid.width, Path(source).name
    stats: dict[str, Any] = {}
    win = int(round(cfg.window_s * fps))
    step = max(1, int(round(cfg.stride_s * fps)))
    latencies: list[float] = []

    def on_chunk(start: int, stop: int, y: np.ndarray) -> None:
        band = band_for(fps)
        hr = sig.hr_spectrum(y, fps, band)
        snr, prom = sig.snr_db(y, fps, hr, band), prominence_db(y, fps, band)
        lat = time.perf_counter() - stats["arrival"][stop - 1]
        latencies.append(lat)
        q = "good" if snr >= GOOD_DB and prom >= GOOD_DB else ("poor" if snr < POOR_SNR_DB or prom < POOR_PROM_DB else "fair")
        echo(f"[live] t={stop / fps:7.1f}s HR {hr:6.1f} bpm ({q}, SNR {snr:5.1f} dB) latency {lat * 1000:6.0f} ms "
             f"backlog {stats['backlog'][-1] if stats['backlog'] else 0} frames")

    t0 = time.perf_counter()
    frames = paced_frames(factory, fps, realtime and not source.startswith("camera:"), stats)
    res = run_stream(frames, fps, h, w, info, cfg, chunk=win, overlap=win - step, on_chunk=on_chunk, where=source)
    wall = time.perf_counter() - t0
    _check_face(res, cfg, source)
    ana = analyse(res, cfg)
    summary = summarize(name, res, ana, info, cfg, len(res.bvp))
    media = len(res.bvp) / fps
    backlog = np.asarray(stats.get("backlog", [0]))
    half = len(backlog) // 2
    summary["live"] = {
        "latency_ms_median": round(float(np.median(latencies)) * 1000, 1) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)) * 1000, 1) if latencies else None,
        "backlog_frames_max": int(backlog.max()) if len(backlog) else 0,
        "backlog_frames_mean_first_half": round(float(backlog[:half].mean()), 2) if half else 0.0,
        "backlog_frames_mean_second_half": round(float(backlog[half:].mean()), 2) if half else 0.0,
        "wall_s": round(wall, 2), "media_s": round(media, 2),
        "busy_s": round(res.seconds - stats.get("wait_s", 0.0), 2),
        # media seconds per second of work (decode in the reader thread not counted: a camera decodes too)
        "real_time_factor": round(media / max(res.seconds - stats.get("wait_s", 0.0), 1e-9), 2),
        "realtime_fed": bool(realtime),
    }
    _write_outputs(Path(out_root) / Path(name).stem, res, ana, summary, cfg)
    return summary


# -- command line --------------------------------------------------------------------------------
USAGE = ("usage: rppg-bench predict PATH|source=camera:N [method=pos] [method.KEY=VALUE ...] [method.checkpoint=FILE] "
         "[out=DIR] [window_s=10] [stride_s=1] [no_face=error|full_frame|skip_record] [fps=F] [report=true] [--live] "
         "[duration_s=S]")


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_args(argv: Sequence[str]) -> dict[str, Any]:
    args: dict[str, Any] = {"paths": [], "method": "pos", "method_cfg": {}, "out": "predictions", "live": False,
                            "source": None, "duration_s": None, "progress": True, "cfg": {}}
    fields = set(PredictConfig.__dataclass_fields__)
    for a in argv:
        if a in ("--live", "live=true"):
            args["live"] = True
        elif "=" not in a:
            args["paths"].append(a)
        else:
            k, v = a.split("=", 1)
            if k == "method":
                args["method"] = v
            elif k.startswith("method."):
                args["method_cfg"][k[len("method."):]] = _value(v)
            elif k in ("out", "source"):
                args[k] = v
            elif k == "duration_s":
                args[k] = float(v)
            elif k == "progress":
                args[k] = bool(_value(v))
            elif k in fields:
                args["cfg"][k] = _value(v)
            else:
                raise ValueError(f"predict: unknown argument {k!r}; valid: method, method.KEY, out, source, duration_s, "
                                 f"progress, --live, {', '.join(sorted(fields))}")
    return args


def list_videos(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            vids = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTS)
            if not vids:
                raise FileNotFoundError(f"{p}: no video files ({', '.join(VIDEO_EXTS)})")
            out.extend(vids)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def main(argv: Sequence[str]) -> int:
    """Pulse, HR over time, HRV and respiration of your own videos (no label needed); see
    ``benchmark/predict.py`` for the outputs. A folder run goes on past a bad file and lists it at the
    end; the exit status is 1 if any file failed."""
    args = parse_args(argv)
    if not args["paths"] and not args["source"]:
        print(USAGE, file=sys.stderr)
        return 2
    cfg = PredictConfig(**args["cfg"])
    info = build_predict_method(args["method"], args["method_cfg"], cfg.size)
    print(f"[predict] method {info.name}, input {info.shape()}" + (f", checkpoint {info.checkpoint}" if info.checkpoint else ""))
    out = Path(args["out"])
    if args["source"]:
        s = predict_live(args["source"], info, cfg, out, duration_s=args["duration_s"])
        print(summary_line(s))
        print(f"[live] {json.dumps(s['live'])}")
        return 0
    videos = list_videos(args["paths"])
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    from benchmark.settings import one_line

    for v in videos:
        try:
            if args["live"]:
                s = predict_live(str(v), info, cfg, out)
                print(f"[live] {json.dumps(s['live'])}")
            else:
                s = predict_video(v, info, cfg, out, progress=args["progress"])
            print(summary_line(s), flush=True)
        except SkippedVideo as e:
            skipped[str(v)] = str(e)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one bad file must not stop a folder run; listed below
            failed[str(v)] = one_line(e)
            print(f"FAILED {v}: {failed[str(v)]}", file=sys.stderr, flush=True)
    done = len(videos) - len(failed) - len(skipped)
    print(f"[predict] {done} of {len(videos)} video(s) written to {out}/" + (f"; {len(skipped)} skipped" if skipped else "")
          + (f"; {len(failed)} failed" if failed else ""))
    for v, why in skipped.items():
        print(f"  skipped {why}")
    for v, why in failed.items():
        print(f"  FAILED {v}: {why}", file=sys.stderr)
    return 1 if failed else 0
