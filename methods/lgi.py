"""LGI: local group invariance (Pilz et al. 2018).

Paper: C. S. Pilz, S. Zaunseder, J. Krajewski, V. Blazek, "Local group invariance for heart rate
estimation from face videos in the wild", CVPR Workshops, 1254–1262 (2018): the RGB observations
are projected onto the orthogonal complement of their principal direction (the dominant, mostly
intensity-like variation shared by all channels), which makes the pulse estimate invariant to that
local group of transformations; the pulse is read from the projected green channel.

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/LGI.py``: SVD of the 3 × T matrix of
raw mean-RGB traces, ``u`` = first left singular vector, ``Y = (I − u uᵀ) X``, output ``Y[1]``
(green row), on the whole record and without filtering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.method import UnsupervisedMethod
from benchmark.registry import register_method
from methods._unsupervised_common import finite, traces


def lgi_signal(rgb: np.ndarray) -> np.ndarray:
    """(T, 3) traces → (T,) green row of the projection orthogonal to the principal direction."""
    x = rgb.T  # (3, T)
    u, _, _ = np.linalg.svd(x, full_matrices=False)
    d = u[:, :1]
    y = x - d @ (d.T @ x)
    return y[1]


@register_method("lgi")
class LGI(UnsupervisedMethod):
    """Projection orthogonal to the principal RGB direction (whole record, as the toolbox)."""

    @dataclass
    class Config:
        pass

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) pulse; needs ≥ max(16, 2 s·fps) frames."""
        rgb, _ = traces(frames, fps, "lgi")
        y = lgi_signal(rgb)
        return finite(y - y.mean())
