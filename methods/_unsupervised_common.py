"""Shared pieces of the training-free rPPG methods (input checks, RGB traces, windowing).

Every unsupervised method turns the spatial-mean RGB trace of the face crop into a pulse signal.
The traces are computed with :func:`benchmark.signal.rgb_traces`, which streams the (possibly
memory-mapped) uint8 video in blocks, so no float copy of the whole video is ever made.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.signal import rgb_traces

#: Shortest input accepted by every method, in seconds of video (two beats at 60 bpm; windows
#: of 1.6 s and the band-pass filters need at least this much).
MIN_SECONDS = 2.0
#: ... and never fewer than this many frames, whatever the frame rate.
MIN_FRAMES = 16

_EPS = 1e-9


def min_frames(fps: float) -> int:
    """Minimum number of frames a method accepts at ``fps``: max(16, ceil(2 s · fps))."""
    return max(MIN_FRAMES, math.ceil(MIN_SECONDS * fps))


def check_fps(fps: float, method: str) -> float:
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"{method}: fps must be a finite number > 0, got {fps}")
    return fps


def traces(frames: np.ndarray, fps: float, method: str) -> tuple[np.ndarray, float]:
    """Validate ``frames`` (T, H, W, 3) and ``fps``; return the (T, 3) float64 mean-RGB trace."""
    fps = check_fps(fps, method)
    shape = getattr(frames, "shape", None)
    if shape is None or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"{method}: frames must be an array of shape (T, H, W, 3), got shape {shape}")
    if shape[1] == 0 or shape[2] == 0:
        raise ValueError(f"{method}: frames have no pixels (shape {shape})")
    need = min_frames(fps)
    if shape[0] < need:
        raise ValueError(
            f"{method}: need at least {need} frames "
            f"(max({MIN_FRAMES}, {MIN_SECONDS:g} s × {fps:g} fps)), got {shape[0]}"
        )
    rgb = rgb_traces(frames)
    if not np.all(np.isfinite(rgb)):
        raise ValueError(f"{method}: frames contain NaN/inf values")
    return rgb, fps


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with |b| < eps treated as eps (an all-black channel gives 0, not NaN)."""
    b = np.where(np.abs(b) < _EPS, _EPS, b)
    return a / b


def normalize_by_mean(rgb: np.ndarray, axis: int = 0) -> np.ndarray:
    """Temporal normalisation C / mean(C) per channel (the common first step of CHROM/POS/PBV)."""
    return safe_div(rgb, rgb.mean(axis=axis, keepdims=True))


def window_starts(n: int, win: int, hop: int) -> list[int]:
    """Start indices of windows of ``win`` samples every ``hop``, plus one window ending at ``n``
    so that the last frames are covered too (the toolbox drops the tail)."""
    if win >= n:
        return [0]
    starts = list(range(0, n - win + 1, hop))
    if starts[-1] + win < n:
        starts.append(n - win)
    return starts


def overlap_add(pieces: list[tuple[int, np.ndarray]], n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted overlap-add of (start, segment) pieces into a length-``n`` signal, normalised by the
    summed weights where they are positive (so record edges and an irregular last hop are not
    attenuated). ``weights`` None → rectangular."""
    acc = np.zeros(n)
    wsum = np.zeros(n)
    for start, seg in pieces:
        w = np.ones(len(seg)) if weights is None else weights[: len(seg)]
        acc[start : start + len(seg)] += w * seg
        wsum[start : start + len(seg)] += w
    out = np.zeros(n)
    ok = wsum > 1e-6
    out[ok] = acc[ok] / wsum[ok]
    return out


def finite(x: np.ndarray) -> np.ndarray:
    """Replace any non-finite sample (degenerate input, e.g. a constant video) by 0."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        x = np.where(np.isfinite(x), x, 0.0)
    return x
