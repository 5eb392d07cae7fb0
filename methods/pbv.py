"""PBV: blood-volume pulse signature method (de Haan & van Leest 2014).

Paper: G. de Haan, A. van Leest, "Improved motion robustness of remote-PPG by using the blood
volume pulse signature", Physiol. Meas. 35(9), 1913–1926 (2014), DOI 10.1088/0967-3334/35/9/1913:
pulse-induced colour changes of skin lie along a specific vector ``Pbv`` in normalised RGB; the
pulse is the projection ``S = k · Pbvᵀ Q⁻¹ Cn`` with ``Q = Cn Cnᵀ``, i.e. the weights ``W = Q⁻¹ Pbv``
that pass the signature with unit gain while minimising the output energy (all other variations,
motion included, are suppressed as far as they are not along Pbv).

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/PBV.py``: ``Cn`` = each channel divided
by its temporal mean (whole record, no filtering), the signature estimated from the data as
``std(Cn_c) / ‖std(Cn)‖``, ``W = solve(Q, Pbv)``, output ``Cnᵀ W / (Pbvᵀ W)``.

``signature`` lets a known camera/light signature replace the estimate (the paper derives it from
the light spectrum and the camera filters; e.g. (0.33, 0.77, 0.53) as quoted by Wang et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.method import MethodConfigError, UnsupervisedMethod
from benchmark.registry import register_method
from methods._unsupervised_common import finite, normalize_by_mean, safe_div, traces


def pbv_signal(rgb: np.ndarray, signature: tuple[float, float, float] | None = None) -> np.ndarray:
    cn = normalize_by_mean(rgb)  # (T, 3)
    if signature is None:
        sd = cn.std(axis=0)
        pbv = safe_div(sd, np.linalg.norm(sd))
    else:
        pbv = np.asarray(signature, dtype=np.float64)
        pbv = pbv / np.linalg.norm(pbv)
    q = cn.T @ cn  # (3, 3)
    try:
        w = np.linalg.solve(q, pbv)
    except np.linalg.LinAlgError:
        w = np.linalg.lstsq(q, pbv, rcond=None)[0]
    return safe_div(cn @ w, np.asarray(pbv @ w))


@register_method("pbv")
class PBV(UnsupervisedMethod):
    """Signature-constrained projection; ``signature`` None → estimated from the record."""

    @dataclass
    class Config:
        signature: tuple[float, float, float] | None = None

    def __init__(self, **cfg) -> None:
        super().__init__(**cfg)
        sig = self.cfg.signature
        if sig is not None and (len(sig) != 3 or not np.all(np.isfinite(sig)) or np.linalg.norm(sig) == 0):
            raise MethodConfigError(f"pbv: signature must be three finite numbers, not all zero; got {sig}")

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) pulse; needs ≥ max(16, 2 s·fps) frames."""
        rgb, _ = traces(frames, fps, "pbv")
        s = pbv_signal(rgb, self.cfg.signature)
        return finite(s - s.mean())
