"""GREEN: the green-channel spatial mean as the pulse signal.

Paper: W. Verkruysse, L. O. Svaasand, J. S. Nelson, "Remote plethysmographic imaging using ambient
light", Optics Express 16(26), 21434–21445 (2008): the green channel carries the strongest
plethysmographic signal (haemoglobin absorbs green light most), so the spatial average of the green
channel over the face is taken as the raw PPG.

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/GREEN.py``: the method returns the
frame-mean green value unfiltered; detrending and band-pass filtering are done by the evaluation.
The signal has the polarity of the reflected light (it falls when blood volume rises).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.method import UnsupervisedMethod
from benchmark.registry import register_method
from methods._unsupervised_common import finite, traces


@register_method("green")
class Green(UnsupervisedMethod):
    """Mean green value per frame (minus its temporal mean)."""

    @dataclass
    class Config:
        pass

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) green trace; needs ≥ max(16, 2 s·fps) frames."""
        rgb, _ = traces(frames, fps, "green")
        g = rgb[:, 1]
        return finite(g - g.mean())
