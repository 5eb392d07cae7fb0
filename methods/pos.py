"""POS: plane-orthogonal-to-skin projection (Wang et al. 2017).

Paper: W. Wang, A. C. den Brinker, S. Stuijk, G. de Haan, "Algorithmic principles of remote PPG",
IEEE Trans. Biomed. Eng. 64(7), 1479–1491 (2017), Algorithm 1: for every window of
``l = ceil(1.6 s · fps)`` frames ending at frame n, temporally normalise the RGB trace
(C / mean C), project it on the plane orthogonal to the skin tone with
``P = [[0, 1, -1], [-2, 1, 1]]``, combine the two projections with ``h = S1 + (σ(S1)/σ(S2))·S2``
(alpha tuning) and overlap-add the zero-mean ``h`` into the output.

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/POS_WANG.py``: window 1.6 s with
``ceil``, one window per frame (hop 1), then smoothness-priors detrend (λ = 100) and a first-order
Butterworth band-pass 0.75–3 Hz with ``filtfilt`` on the result.

Differences from the toolbox, both at the record edges only: windows end at every frame including
the last one (the toolbox's loop stops one frame early), and each output sample is divided by the
number of windows covering it, so the first and last 1.6 s are not attenuated (interior samples
are the toolbox's values divided by the constant l).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmark.method import UnsupervisedMethod
from benchmark.registry import register_method
from benchmark.signal import bandpass, detrend
from methods._unsupervised_common import finite, safe_div, traces

_PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])


def pos_signal(rgb: np.ndarray, fps: float, window_s: float = 1.6, block: int = 4096) -> np.ndarray:
    """Core POS on a (T, 3) RGB trace → (T,) overlap-added pulse signal (no post-filtering)."""
    n = len(rgb)
    win = min(max(2, math.ceil(window_s * fps)), n)
    k_total = n - win + 1
    acc = np.zeros(n)
    count = np.zeros(n)
    view = np.lib.stride_tricks.sliding_window_view(rgb, win, axis=0)  # (K, 3, win)
    for k0 in range(0, k_total, block):
        w = view[k0 : k0 + block]  # (k, 3, win)
        cn = safe_div(w, w.mean(axis=2, keepdims=True))
        s = np.einsum("pc,kcw->kpw", _PROJECTION, cn)  # (k, 2, win)
        std = s.std(axis=2)
        alpha = safe_div(std[:, 0], std[:, 1])
        h = s[:, 0] + alpha[:, None] * s[:, 1]
        h -= h.mean(axis=1, keepdims=True)
        k = len(h)
        for o in range(win):
            acc[k0 + o : k0 + o + k] += h[:, o]
            count[k0 + o : k0 + o + k] += 1
    return acc / np.maximum(count, 1)


@register_method("pos")
class POS(UnsupervisedMethod):
    """Plane-orthogonal-to-skin; ``band`` None skips the toolbox's detrend + band-pass."""

    @dataclass
    class Config:
        window_s: float = 1.6
        detrend_lambda: float | None = None
        band: tuple[float, float] | None = None
        filter_order: int = 1

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) pulse; needs ≥ max(16, 2 s·fps) frames."""
        rgb, fps = traces(frames, fps, "pos")
        if not self.cfg.window_s or self.cfg.window_s <= 0:
            raise ValueError(f"pos: window_s must be > 0, got {self.cfg.window_s}")
        h = pos_signal(rgb, fps, self.cfg.window_s)
        if self.cfg.detrend_lambda:
            h = detrend(h, self.cfg.detrend_lambda)
        if self.cfg.band is not None:
            h = bandpass(h, fps, tuple(self.cfg.band), self.cfg.filter_order)
        return finite(h)
