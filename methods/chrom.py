"""CHROM: chrominance-based rPPG (de Haan & Jeanne 2013).

Paper: G. de Haan, V. Jeanne, "Robust pulse rate from chrominance-based rPPG", IEEE Trans. Biomed.
Eng. 60(10), 2878–2886 (2013), DOI 10.1109/TBME.2013.2266196: per window, the temporally
normalised traces are combined into two chrominance signals ``X = 3R − 2G`` and
``Y = 1.5R + G − 1.5B`` (standardised skin-tone white balance), both band-passed, and the pulse is
``S = Xf − α·Yf`` with ``α = σ(Xf)/σ(Yf)``; windows are Hann-weighted and overlap-added.

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/CHROME_DEHAAN.py``: window
``ceil(1.6 s · fps)`` rounded up to an even length, hop of half a window, third-order Butterworth
band-pass 0.7–2.5 Hz applied with ``filtfilt`` inside each window, symmetric Hann window.

Differences from the toolbox: a last window aligned with the record end covers the tail frames the
toolbox drops (its output is shorter than the video), and the overlap-added signal is divided by the
summed Hann weights, so the record edges are not tapered to zero; the band-pass uses second-order
sections with the pad length capped for short windows (same filter, numerically safer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal

from benchmark.method import UnsupervisedMethod
from benchmark.registry import register_method
from benchmark.signal import butter_bandpass_sos, sosfiltfilt
from methods._unsupervised_common import (
    finite,
    normalize_by_mean,
    overlap_add,
    safe_div,
    traces,
    window_starts,
)


@register_method("chrom")
class CHROM(UnsupervisedMethod):
    """Chrominance method with Hann-windowed overlap-add."""

    @dataclass
    class Config:
        window_s: float = 1.6
        band: tuple[float, float] = (0.7, 2.5)
        filter_order: int = 3

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) pulse; needs ≥ max(16, 2 s·fps) frames."""
        rgb, fps = traces(frames, fps, "chrom")
        n = len(rgb)
        if not self.cfg.window_s or self.cfg.window_s <= 0:
            raise ValueError(f"chrom: window_s must be > 0, got {self.cfg.window_s}")
        win = math.ceil(self.cfg.window_s * fps)
        win += win % 2
        win = min(win, n)
        sos = butter_bandpass_sos(fps, tuple(self.cfg.band), self.cfg.filter_order)
        hann = scipy.signal.windows.hann(win)
        pieces = []
        for s in window_starts(n, win, max(win // 2, 1)):
            cn = normalize_by_mean(rgb[s : s + win])
            x = 3.0 * cn[:, 0] - 2.0 * cn[:, 1]
            y = 1.5 * cn[:, 0] + cn[:, 1] - 1.5 * cn[:, 2]
            xf = sosfiltfilt(x, sos)
            yf = sosfiltfilt(y, sos)
            alpha = safe_div(np.std(xf), np.std(yf))
            pieces.append((s, xf - alpha * yf))
        return finite(overlap_add(pieces, n, hann))
