"""Label-noise models: seeded, composable corruptions of a *training* PPG label.

Each model imitates one way a contact-PPG reference goes wrong in real rPPG datasets, and is a
:class:`benchmark.labels.LabelTransform` (scope ``"record"``) registered by name, so a run trains
on noisy labels by config alone (``labels: [{name: gaussian_noise, severity: 2}]``); the data
pipeline applies label transforms to training labels only.

Every model takes ``severity`` ∈ {0, 1, 2, 3}: 0 is the exact identity (the input returned as
float64, no random draws), 1–3 are mild / moderate / severe. Magnitudes are physical and relative
to the label itself (amplitudes as multiples of the label's own standard deviation ``s``, times in
seconds, rates as fractions), so one severity means the same harm for labels in any unit:

==================  ===========================================  ===============================
model               severity 1 / 2 / 3                           imitates
==================  ===========================================  ===============================
gaussian_noise      σ = 0.1 / 0.3 / 0.6 · s                      sensor / ADC / ambient noise
baseline_wander     wander RMS = 0.5 / 1.0 / 2.0 · s             respiration, probe pressure drift
motion_bursts       5 / 15 / 30 % of time, RMS 1 / 2 / 4 · s     finger / hand motion
dropouts            5 / 15 / 30 % of time flat or clipped        contact loss, saturation
time_lag            0.1 / 0.25 / 0.5 s                           PTT offset, video–label desync
morphology          low-pass 3 / 2 / 1.5 × HR, AM 15 / 30 / 50 %  damped waveform, notch lost
wrong_rate          25 / 35 / 50 % of time at ±10 / 20 / 30 %    resampling / timestamp glitches
==================  ===========================================  ===============================

``label_noise`` composes several models in a fixed physical order (:data:`ORDER`) with independent
sub-generators, so a composite label is reproducible and switching one kind off does not change the
random draws of the others.

The models are written here rather than taken from ``neurokit2.signal_distort``: that function
scales noise by absolute amplitude and frequency, has no identity level and mixes several
corruptions in one draw, whereas a severity ladder needs one corruption at a time, calibrated to the
label and exactly zero at severity 0.

References: J. Allen, "Photoplethysmography and its application in clinical physiological
measurement", Physiol. Meas. 28 (2007) R1–R39 (respiratory baseline modulation, vasoconstriction
and the dicrotic notch, motion and probe-contact artefacts); P. H. Charlton et al., "Wearable
photoplethysmography for cardiovascular monitoring", Proc. IEEE 110 (2022) 355–381 (artefact
sources of wearable PPG).

>>> import numpy as np
>>> from benchmark.labels import create_label_transform
>>> y = np.sin(2 * np.pi * 1.2 * np.arange(300) / 30.0)
>>> t = create_label_transform("gaussian_noise", severity=0)
>>> bool(np.array_equal(t(y, 30.0, np.random.default_rng(0)), y))
True
>>> noisy = create_label_transform("label_noise", severity=2)
>>> a = noisy(y, 30.0, np.random.default_rng(7)); b = noisy(y, 30.0, np.random.default_rng(7))
>>> bool(np.array_equal(a, b)), a.shape
(True, (300,))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.signal

from benchmark import signal as sig
from benchmark.labels import LabelTransform, create_label_transform, register_label_transform

#: Valid severities; 0 is the identity.
SEVERITIES = (0, 1, 2, 3)

#: Order in which ``label_noise`` applies its kinds: the waveform's shape (physiology/probe) first,
#: then timing errors of the recording chain, then additive optical disturbances, sensor noise, and
#: finally contact loss / saturation, which overwrites whatever the device would have measured.
ORDER = (
    "morphology",
    "wrong_rate",
    "time_lag",
    "baseline_wander",
    "motion_bursts",
    "gaussian_noise",
    "dropouts",
)


def check_severity(severity: Any, where: str = "label noise") -> int:
    """Return ``severity`` as an int in 0–3, or raise ``ValueError`` naming the valid range."""
    ok = not isinstance(severity, bool) and isinstance(severity, (int, np.integer, float, np.floating))
    if ok and float(severity) in SEVERITIES:
        return int(severity)
    raise ValueError(f"{where}: severity must be an integer in 0–3 (0 = identity, 3 = severe), got {severity!r}")


def _as_label(label: Any, where: str) -> np.ndarray:
    x = np.array(label, dtype=np.float64)  # a copy: transforms never alias the caller's array
    if x.ndim != 1:
        raise ValueError(f"{where}: label must be 1-D (T,), got shape {x.shape}")
    if len(x) < 2:
        raise ValueError(f"{where}: label of {len(x)} samples is too short")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: label contains NaN or inf")
    return x


def _scale(x: np.ndarray) -> float:
    """The label's own standard deviation (1.0 for a constant label, so noise is still defined)."""
    s = float(x.std())
    return s if s > 0 else 1.0


def _segments(
    n: int,
    fps: float,
    coverage: float,
    dur_s: tuple[float, float],
    rng: np.random.Generator,
    *,
    disjoint: bool = False,
) -> list[tuple[int, int]]:
    """Random [start, stop) segments of ``dur_s`` seconds until their union covers ``coverage`` of n.

    Segments may overlap unless ``disjoint`` (then a draw that overlaps is discarded); placement
    stops once the union reaches the target or after 1000 draws.
    """
    target = coverage * n
    covered = np.zeros(n, dtype=bool)
    out: list[tuple[int, int]] = []
    for _ in range(1000):
        if covered.sum() >= target:
            break
        d = int(round(rng.uniform(*dur_s) * fps))
        d = min(max(d, 2), n)
        s = int(rng.integers(0, n - d + 1))
        if disjoint and covered[s : s + d].any():
            continue
        out.append((s, s + d))
        covered[s : s + d] = True
    return out


class NoiseModel(LabelTransform):
    """Base of the severity-laddered noise models.

    Subclasses set :attr:`imitates` (the real failure, one line) and implement :meth:`_apply`, which is
    only called for severity ≥ 1 with a validated float64 copy of the label.
    """

    scope: ClassVar[str] = "record"
    imitates: ClassVar[str] = ""

    def __init__(self, severity: int = 1):
        self.severity = check_severity(severity, self.name)

    def __call__(self, label: np.ndarray, fps: float, rng: np.random.Generator | int | None) -> np.ndarray:
        x = _as_label(label, self.name)
        if self.severity == 0:
            return x
        fps = sig._check_fs(fps)
        return self._apply(x, fps, np.random.default_rng(rng))

    def _apply(self, x: np.ndarray, fps: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


@register_label_transform("gaussian_noise")
class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise, σ = {0, 0.1, 0.3, 0.6} × the label's std.

    Imitates the broadband noise floor of the reference sensor: photodiode shot/thermal noise, ADC
    quantisation and ambient-light leakage into a loosely closed finger clip.
    """

    imitates = "sensor / ADC / ambient-light noise"
    SIGMA = (0.0, 0.1, 0.3, 0.6)

    def _apply(self, x, fps, rng):
        return x + rng.normal(0.0, self.SIGMA[self.severity] * _scale(x), size=len(x))


@register_label_transform("baseline_wander")
class BaselineWander(NoiseModel):
    """Slow additive baseline: a respiratory sinusoid plus a very slow drift, total RMS
    {0, 0.5, 1.0, 2.0} × the label's std.

    Imitates the respiration-induced intensity variation of the PPG baseline (0.15–0.4 Hz, Allen
    2007 §4) and drift from slowly changing probe pressure, skin temperature or the sensor's ambient
    compensation (three random tones in 0.01–0.1 Hz). The respiratory and drift parts get equal
    power. A band-pass in the training pipeline removes most of it, which is itself worth measuring.
    """

    imitates = "respiration / probe-pressure / temperature baseline drift"
    RMS = (0.0, 0.5, 1.0, 2.0)
    RESP_HZ = (0.15, 0.4)
    DRIFT_HZ = (0.01, 0.1)

    def _apply(self, x, fps, rng):
        t = np.arange(len(x)) / fps
        resp = np.sin(2 * np.pi * rng.uniform(*self.RESP_HZ) * t + rng.uniform(0, 2 * np.pi))
        drift = np.zeros_like(t)
        for _ in range(3):
            drift += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * rng.uniform(*self.DRIFT_HZ) * t + rng.uniform(0, 2 * np.pi))
        parts = [p / r for p in (resp, drift) if (r := math.sqrt(float(np.mean(p**2)))) > 0]
        wander = np.sum(parts, axis=0)
        rms = math.sqrt(float(np.mean(wander**2)))
        if rms == 0:  # a label shorter than one sample period of every tone: nothing to add
            return x
        return x + wander / rms * self.RMS[self.severity] * _scale(x)


@register_label_transform("motion_bursts")
class MotionBursts(NoiseModel):
    """Bursts of band-limited large artefacts covering {0, 5, 15, 30} % of the record, burst RMS
    {0, 1, 2, 4} × the label's std, each 0.5–2.5 s with a Hann envelope.

    Imitates finger or hand motion at the contact sensor (tapping, gripping, the clip sliding):
    artefacts of several times the pulse amplitude whose spectrum (here Gaussian noise low-passed at
    ``cutoff_hz`` = 3 Hz plus a random baseline bump) overlaps the cardiac band, so no filter removes
    them (Allen 2007 §5; Charlton et al. 2022).
    """

    imitates = "finger / hand motion artefacts"
    COVERAGE = (0.0, 0.05, 0.15, 0.30)
    RMS = (0.0, 1.0, 2.0, 4.0)
    DURATION_S = (0.5, 2.5)

    def __init__(self, severity: int = 1, cutoff_hz: float = 3.0):
        super().__init__(severity)
        if not cutoff_hz > 0:
            raise ValueError(f"motion_bursts: cutoff_hz must be > 0, got {cutoff_hz}")
        self.cutoff_hz = float(cutoff_hz)

    def _apply(self, x, fps, rng):
        n = len(x)
        amp = self.RMS[self.severity] * _scale(x)
        wc = min(self.cutoff_hz / (fps / 2), 0.99)
        sos = scipy.signal.butter(2, wc, btype="low", output="sos")
        y = x.copy()
        for s, e in _segments(n, fps, self.COVERAGE[self.severity], self.DURATION_S, rng):
            d = e - s
            burst = rng.normal(size=d + 64)
            burst = scipy.signal.sosfilt(sos, burst)[64:]  # 64 samples of filter warm-up dropped
            burst = burst / (burst.std() + 1e-12) + rng.normal()  # band-limited noise + a baseline bump
            env = np.hanning(d + 2)[1:-1]
            y[s:e] += amp * env * burst
        return y


@register_label_transform("dropouts")
class Dropouts(NoiseModel):
    """Segments of 0.5–3 s covering {0, 5, 15, 30} % of the record where the label is flat (the
    value at the segment start held) or clipped to the segment's 25–75th percentile range.

    Imitates loss of skin contact (devices output a held or railed value while the finger is out of
    the clip) and saturation of the photodiode/ADC or a mis-set gain, which shaves peaks and troughs.
    ``mode``: ``"flat"``, ``"clip"`` or ``"mix"`` (default; each segment flat or clipped at random).
    """

    imitates = "contact loss (flat) / saturation (clipped)"
    COVERAGE = (0.0, 0.05, 0.15, 0.30)
    DURATION_S = (0.5, 3.0)
    CLIP_PERCENTILES = (25.0, 75.0)
    MODES = ("flat", "clip", "mix")

    def __init__(self, severity: int = 1, mode: str = "mix"):
        super().__init__(severity)
        if mode not in self.MODES:
            raise ValueError(f"dropouts: mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def _apply(self, x, fps, rng):
        y = x.copy()
        for s, e in _segments(len(x), fps, self.COVERAGE[self.severity], self.DURATION_S, rng):
            flat = self.mode == "flat" or (self.mode == "mix" and rng.random() < 0.5)
            if flat:
                y[s:e] = y[s]
            else:
                lo, hi = np.percentile(x[s:e], self.CLIP_PERCENTILES)
                y[s:e] = np.clip(y[s:e], lo, hi)
        return y


@register_label_transform("time_lag")
class TimeLag(NoiseModel):
    """Shift the label in time by {0, 0.1, 0.25, 0.5} s (fractional, linear interpolation), plus an
    optional clock drift of ``drift_ppm`` (the lag grows by drift_ppm·1e-6 s per second).

    Imitates the pulse-transit-time difference between the face and the finger (the finger pulse
    arrives ~0.1–0.3 s later), a constant video–label timestamp offset, and (with ``drift_ppm``)
    clock-rate mismatch between camera and oximeter. ``direction``: ``"delay"`` (default, label
    late as for a finger probe), ``"advance"`` or ``"random"`` (sign drawn per call). Samples shifted
    in from outside the record are mirrored at the edge, so no flat run is introduced.
    """

    imitates = "PTT offset / video–label desynchronisation"
    LAG_S = (0.0, 0.1, 0.25, 0.5)
    DIRECTIONS = ("delay", "advance", "random")

    def __init__(self, severity: int = 1, direction: str = "delay", drift_ppm: float = 0.0):
        super().__init__(severity)
        if direction not in self.DIRECTIONS:
            raise ValueError(f"time_lag: direction must be one of {self.DIRECTIONS}, got {direction!r}")
        self.direction = direction
        self.drift_ppm = float(drift_ppm)

    def _apply(self, x, fps, rng):
        n = len(x)
        sign = {"delay": 1.0, "advance": -1.0}.get(self.direction)
        if sign is None:
            sign = 1.0 if rng.random() < 0.5 else -1.0
        i = np.arange(n, dtype=np.float64)
        lag = sign * self.LAG_S[self.severity] * fps + self.drift_ppm * 1e-6 * i
        return np.interp(_reflect(i - lag, n), np.arange(n), x)


def _reflect(pos: np.ndarray, n: int) -> np.ndarray:
    """Mirror positions outside [0, n-1] back inside (period 2(n-1), like ``np.pad(mode='reflect')``)."""
    if n < 2:
        return np.zeros_like(pos)
    p = np.mod(pos, 2 * (n - 1))
    return np.where(p > n - 1, 2 * (n - 1) - p, p)


@register_label_transform("morphology")
class Morphology(NoiseModel):
    """Waveform shape and amplitude distortion: a zero-phase low-pass at {—, 3, 2, 1.5} × the label's
    own heart rate (damps the higher harmonics, so the dicrotic notch and diastolic peak fade into a
    near-sinusoid) and a slow amplitude modulation of depth {0, 15, 30, 50} % at 0.05–0.15 Hz.

    Imitates vasoconstriction (cold hands, stress) and excessive probe pressure, which damp the
    pulse and erase the dicrotic notch, and vasomotion / perfusion changes that modulate the pulse
    amplitude (Allen 2007 §3–4). The timing of the beats is untouched (zero-phase filter).
    """

    imitates = "vasoconstriction / probe pressure: damped notch, amplitude modulation"
    CUTOFF_X_HR = (math.inf, 3.0, 2.0, 1.5)
    AM_DEPTH = (0.0, 0.15, 0.30, 0.50)
    AM_HZ = (0.05, 0.15)

    def _apply(self, x, fps, rng):
        n = len(x)
        mean = x.mean()
        y = x - mean
        hr_hz = sig.hr_spectrum(x, fps) / 60.0 if n >= 4 else 1.0
        wc = self.CUTOFF_X_HR[self.severity] * hr_hz / (fps / 2)
        if wc < 0.95:
            sos = scipy.signal.butter(2, wc, btype="low", output="sos")
            y = scipy.signal.sosfiltfilt(sos, y, padlen=min(3 * (2 * len(sos) + 1), n - 1))
        t = np.arange(n) / fps
        am = 1.0 + self.AM_DEPTH[self.severity] * np.sin(2 * np.pi * rng.uniform(*self.AM_HZ) * t + rng.uniform(0, 2 * np.pi))
        return mean + y * am


@register_label_transform("wrong_rate")
class WrongRate(NoiseModel):
    """Non-overlapping segments of 4–10 s covering {0, 25, 35, 50} % of the record played at a wrong rate: the first
    half of a segment at rate 1 ± ε, the second at 1 ∓ ε (ε = {0, 0.1, 0.2, 0.3}, sign random), so the
    label's heart rate is off by ±ε inside the segment while the waveform stays continuous and back
    in sync at its end.

    Imitates timestamp jitter and resampling glitches of the reference device (buffered samples that
    arrive late and then in a burst, a label resampled by index while the device's sample rate
    wandered), which show as beats locally faster or slower than the video's.
    """

    imitates = "resampling / timestamp glitches: local heart-rate errors"
    COVERAGE = (0.0, 0.25, 0.35, 0.50)
    RATE_ERROR = (0.0, 0.10, 0.20, 0.30)
    DURATION_S = (4.0, 10.0)

    def _apply(self, x, fps, rng):
        n = len(x)
        pos = np.arange(n, dtype=np.float64)
        eps = self.RATE_ERROR[self.severity]
        for s, e in _segments(n, fps, self.COVERAGE[self.severity], self.DURATION_S, rng, disjoint=True):
            r = 1.0 + eps * (1.0 if rng.random() < 0.5 else -1.0)
            d = e - s
            h = d / 2.0
            k = np.arange(d, dtype=np.float64)
            # source position: slope r over the first half, 2 - r over the second; ends at s + d
            warp = np.where(k <= h, k * r, h * r + (k - h) * (2.0 - r))
            pos[s:e] = pos[s] + warp
        return np.interp(np.clip(pos, 0, n - 1), np.arange(n), x)


@register_label_transform("label_noise")
class LabelNoise(LabelTransform):
    """Composite of several noise models at one severity, applied in the fixed order :data:`ORDER`.

    ``kinds``: the models to apply (default all; any order, they always run in :data:`ORDER`).
    ``params``: extra constructor arguments per kind, e.g. ``{"dropouts": {"mode": "flat"}}``.
    Each kind draws from its own generator spawned (``numpy.random.SeedSequence``) from the given
    ``rng`` by its position in :data:`ORDER`, so the composite is reproducible and dropping a kind
    leaves the others' draws unchanged.
    """

    scope: ClassVar[str] = "record"

    def __init__(
        self,
        severity: int = 1,
        kinds: Sequence[str] | None = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        self.severity = check_severity(severity, "label_noise")
        if isinstance(kinds, str):
            kinds = [kinds]
        chosen = list(ORDER) if kinds is None else list(kinds)
        bad = [k for k in chosen if k not in ORDER]
        if bad:
            raise ValueError(f"label_noise: unknown kinds {bad}; valid: {', '.join(ORDER)}")
        params = dict(params or {})
        bad = [k for k in params if k not in chosen]
        if bad:
            raise ValueError(f"label_noise: params given for kinds not applied: {bad}")
        self.kinds = [k for k in ORDER if k in chosen]
        self._models = {
            k: create_label_transform(k, severity=self.severity, **dict(params.get(k, {}))) for k in self.kinds
        }

    def __call__(self, label: np.ndarray, fps: float, rng: np.random.Generator | int | None) -> np.ndarray:
        x = _as_label(label, self.name)
        if self.severity == 0 or not self.kinds:
            return x
        rng = np.random.default_rng(rng)
        children = np.random.SeedSequence(rng.integers(0, 2**32, size=4)).spawn(len(ORDER))
        for i, kind in enumerate(ORDER):
            if kind in self._models:
                x = self._models[kind](x, fps, np.random.default_rng(children[i]))
        return x
