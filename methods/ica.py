"""ICA: blind source separation of the RGB traces (Poh, McDuff & Picard 2010/2011).

Papers: M.-Z. Poh, D. J. McDuff, R. W. Picard, "Non-contact, automated cardiac pulse measurements
using video imaging and blind source separation", Optics Express 18(10), 10762–10774 (2010),
DOI 10.1364/OE.18.010762; and "Advancements in noncontact, multiparameter physiological
measurements using a webcam", IEEE Trans. Biomed. Eng. 58(1), 7–11 (2011): detrend and normalise
the three colour traces, separate three independent components and take the component whose power
spectrum has the highest peak as the pulse.

Facts taken from rPPG-Toolbox ``unsupervised_methods/methods/ICA_POH.py``: smoothness-priors detrend
with λ = 100 per channel, z-scoring, three sources, component selection by the largest value of the
sum-normalised power spectrum, third-order Butterworth band-pass 0.7–2.5 Hz with ``filtfilt``.

Differences: the separation uses scikit-learn's FastICA (a maintained library; the toolbox
hand-codes JADE — both estimate the same unmixing up to order and sign, with different contrast
functions), seeded for determinism; the selection peak is searched only inside the pass band (the
toolbox scans the whole spectrum, where residual low-frequency trend can win).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from benchmark.method import UnsupervisedMethod
from benchmark.registry import register_method
from benchmark.signal import bandpass, detrend
from methods._unsupervised_common import finite, traces


@register_method("ica")
class ICA(UnsupervisedMethod):
    """FastICA on detrended, z-scored RGB traces; the most periodic in-band source is the pulse."""

    @dataclass
    class Config:
        detrend_lambda: float = 100.0
        band: tuple[float, float] = (0.7, 2.5)
        filter_order: int = 3
        seed: int = 0
        max_iter: int = 1000

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB → (T,) pulse; needs ≥ max(16, 2 s·fps) frames."""
        from sklearn.decomposition import FastICA

        rgb, fps = traces(frames, fps, "ica")
        x = detrend(rgb.T, self.cfg.detrend_lambda)  # (3, T)
        sd = x.std(axis=1, keepdims=True)
        if np.all(sd < 1e-9):  # constant video: nothing to separate
            return np.zeros(len(rgb))
        keep = sd[:, 0] >= 1e-9
        x = (x[keep] - x[keep].mean(axis=1, keepdims=True)) / sd[keep]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on near-degenerate inputs
            ica = FastICA(
                n_components=x.shape[0],
                whiten="unit-variance",
                random_state=self.cfg.seed,
                max_iter=self.cfg.max_iter,
            )
            sources = ica.fit_transform(x.T).T  # (k, T)
        sources = finite(sources.reshape(-1)).reshape(sources.shape)
        spec = np.abs(np.fft.rfft(sources, axis=1))[:, 1:] ** 2
        freqs = np.fft.rfftfreq(sources.shape[1], 1.0 / fps)[1:]
        spec = spec / np.maximum(spec.sum(axis=1, keepdims=True), 1e-12)
        in_band = (freqs >= self.cfg.band[0]) & (freqs <= self.cfg.band[1])
        score = spec[:, in_band].max(axis=1) if in_band.any() else spec.max(axis=1)
        best = sources[int(np.argmax(score))]
        return finite(bandpass(best, fps, tuple(self.cfg.band), self.cfg.filter_order))
