"""OMIT: orthogonal matrix image transformation (Álvarez Casado & Bordallo López 2023).

Paper: C. Álvarez Casado, M. Bordallo López, "Face2PPG: An unsupervised pipeline for blood volume
pulse extraction from faces", IEEE J. Biomed. Health Inform. (2023): a QR decomposition of the
RGB signal matrix gives an orthonormal basis; the signal is projected onto the complement of the
first basis vector (the reference skin-colour direction) and the green row of the projection is the
pulse.

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/OMIT.py``: ``Q, R = qr(X)`` for the
3 × T matrix of raw mean-RGB traces, ``s = Q[:, 0]``, ``Y = (I − s sᵀ) X``, output ``Y[1]``,
whole record, no filtering. Note that for a 3 × T matrix ``Q[:, 0]`` is the direction of the first
column, i.e. of the first frame's mean colour, which stands in for the skin tone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.method import UnsupervisedMethod
from benchmark.registry import register_method
from methods._unsupervised_common import finite, traces


def omit_signal(rgb: np.ndarray) -> np.ndarray:
    x = rgb.T  # (3, T)
    q, _ = np.linalg.qr(x)
    s = q[:, :1]
    y = x - s @ (s.T @ x)
    return y[1]


@register_method("omit")
class OMIT(UnsupervisedMethod):
    """QR-based projection orthogonal to the reference colour (whole record, as the toolbox)."""

    @dataclass
    class Config:
        pass

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) pulse; needs ≥ max(16, 2 s·fps) frames."""
        rgb, _ = traces(frames, fps, "omit")
        y = omit_signal(rgb)
        return finite(y - y.mean())
