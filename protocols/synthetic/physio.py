"""Physiology of the v3 synthetic world: beat times, blood-volume pulse, BCG head motion, true HR.

Hand-written instead of :func:`neurokit2.ppg_simulate` because the world must *know* every beat
time (the true heart rate that evaluation scores against) and must drive the facial pulse, the
finger label and the ballistocardiographic head motion from the same beats.

Heart rhythm
    Instantaneous HR(t) = mean HR + a slow trend (``hr_drift_bpm``: the change over the record, e.g.
    UBFC-rPPG's time-pressured game raises HR, MMPD's after-exercise records relax it, Bobbia et
    al. 2019; Tang et al. 2023) + respiratory sinus arrhythmia at the breathing rate (peak-to-peak
    ``2 × rsa_bpm``; RSA of healthy adults at rest is a few bpm, Berntson et al. 1997) + a
    0.1-Hz Mayer-wave component (1–2 bpm, Julien 2006). Beats are the times where the integrated
    rate crosses whole numbers (an integral pulse-frequency-modulation model, as in Mateo &
    Laguna 2000), so the beat times are exact and HR(t) is their true instantaneous rate.

Pulse wave
    Each beat adds a two-Gaussian pulse (systolic peak at 25 % of the beat interval, diastolic
    wave at 55 % with relative height ``dicrotic`` 0.2–0.5): the sum-of-Gaussians description of
    PPG morphology (e.g. Tang et al., Physiol. Meas. 2020, "PPG signal reconstruction using a
    combination of Gaussians"). Respiration also modulates the amplitude (±``resp_mod``/2) and
    baseline (respiratory-induced intensity/amplitude variation, Meredith et al. 2012).
    The facial wave is the blood volume under the face; the label is the same beats seen at the
    finger ``label_lag_s`` later (pulse-transit-time difference, 0.1–0.25 s, e.g. Kamshilin 2016).

BCG
    Cardiac ejection moves the head; Balakrishnan, Durand & Guttag (CVPR 2013) recover the pulse
    from this motion alone. The head displacement is modelled as the beat's systolic rise
    (the pulse wave's time derivative, smoothed) shifted ~0.1–0.2 s *earlier* than the facial
    pulse (the BCG follows ejection, the facial pulse arrives a pulse-transit time later),
    normalised to unit peak-to-peak; amplitudes are set in :mod:`protocols.synthetic.motion`.

>>> b = beat_times(np.full(3000, 60.0), fs=100.0)
>>> round(float(np.diff(b).mean()), 3), window_true_hr(b, 5.0, 15.0)
(1.0, 60.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal


@dataclass(frozen=True)
class Physiology:
    """One record's physiology on a fine clock (``fs`` Hz) starting ``t0`` s before frame 0."""

    fs: float
    t0: float
    face: np.ndarray  # (N,) facial blood-volume wave, unit peak-to-peak
    label: np.ndarray  # (N,) finger PPG (same beats, delayed), unit peak-to-peak
    bcg: np.ndarray  # (N,) BCG head displacement, unit peak-to-peak
    beats: np.ndarray  # beat (systolic onset) times on the video clock, s
    hr_bpm: float  # mean true HR over the video span
    resp_hz: float

    def at(self, wave: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Sample ``wave`` at video-clock times ``t`` (s) by linear interpolation."""
        tau = np.arange(len(wave)) / self.fs - self.t0
        return np.interp(t, tau, wave)


def beat_times(hr_bpm: np.ndarray, fs: float) -> np.ndarray:
    """Beat times (s from the first sample) of an instantaneous-rate curve (IPFM model)."""
    phase = np.cumsum(np.asarray(hr_bpm, np.float64) / 60.0) / fs
    k = np.arange(1, int(np.floor(phase[-1])) + 1)
    return np.interp(k, phase, np.arange(len(phase)) / fs)


def window_true_hr(beats: np.ndarray, start_s: float, stop_s: float) -> float:
    """True mean HR (bpm) in [start_s, stop_s): beats in the window per unit time between them.

    NaN when fewer than two beats fall in the window.
    """
    b = np.asarray(beats, np.float64)
    b = b[(b >= start_s) & (b < stop_s)]
    if len(b) < 2:
        return float("nan")
    return float(60.0 * (len(b) - 1) / (b[-1] - b[0]))


def _pulse_train(beats: np.ndarray, tau: np.ndarray, dicrotic: float) -> np.ndarray:
    wave = np.zeros_like(tau)
    ibis = np.diff(beats, append=beats[-1] + (beats[-1] - beats[-2] if len(beats) > 1 else 1.0))
    for tb, ibi in zip(beats, ibis):
        lo, hi = np.searchsorted(tau, [tb - 0.2 * ibi, tb + 1.6 * ibi])
        x = (tau[lo:hi] - tb) / ibi
        wave[lo:hi] += np.exp(-0.5 * ((x - 0.25) / 0.09) ** 2) + dicrotic * np.exp(-0.5 * ((x - 0.55) / 0.12) ** 2)
    return wave


def _unit(x: np.ndarray) -> np.ndarray:
    p2p = float(np.percentile(x, 98) - np.percentile(x, 2)) or 1.0
    return (x - np.median(x)) / p2p


def simulate(
    rng: np.random.Generator,
    duration_s: float,
    *,
    hr_bpm: float,
    hr_drift_bpm: float,
    rsa_bpm: float,
    respiration: float,
    label_lag_s: float,
    bcg_lead_s: float = 0.15,
) -> Physiology:
    """Simulate one record's physiology (see the module docstring); ``rng`` draws everything."""
    fs = 250.0
    t0 = 2.0 + label_lag_s  # margin before frame 0 (label lag, filter warm-up)
    n = int(np.ceil((t0 + duration_s + 3.0) * fs))
    tau = np.arange(n) / fs
    resp_hz = float(rng.uniform(0.15, 0.4))
    resp = np.sin(2 * np.pi * resp_hz * tau + rng.uniform(0, 2 * np.pi))
    mayer = np.sin(2 * np.pi * rng.uniform(0.08, 0.12) * tau + rng.uniform(0, 2 * np.pi))
    span = tau[-1] or 1.0
    trend = hr_drift_bpm * (tau / span - 0.5)
    rate = hr_bpm + trend + rsa_bpm * resp + rng.uniform(0.5, 2.0) * mayer
    rate = np.clip(rate, 30.0, 220.0)
    beats = beat_times(rate, fs) + rng.uniform(0, 0.5)
    dicrotic = float(rng.uniform(0.2, 0.5))
    clean = _pulse_train(beats, tau, dicrotic)
    wave = clean * (1 + 0.5 * respiration * resp) + 0.3 * respiration * resp * float(clean.max() or 1.0)
    face = _unit(wave)
    label_wave = _pulse_train(beats + label_lag_s, tau, dicrotic * 1.2)
    label = _unit(label_wave * (1 + 0.5 * respiration * resp))
    # BCG: the systolic rise (derivative of the clean wave), low-passed < 8 Hz, leading the face pulse.
    d = np.gradient(clean) * fs
    sos = scipy.signal.butter(2, 8.0 / (fs / 2), output="sos")
    d = scipy.signal.sosfiltfilt(sos, d)
    shift = int(round(bcg_lead_s * fs))
    bcg = _unit(np.concatenate([d[shift:], np.zeros(shift)]))
    vb = beats - t0
    inside = vb[(vb >= 0) & (vb <= duration_s)]
    hr_true = window_true_hr(inside, 0.0, duration_s + 1e-9)
    if not np.isfinite(hr_true):
        hr_true = hr_bpm
    return Physiology(fs=fs, t0=t0, face=face.astype(np.float32), label=label.astype(np.float32), bcg=bcg.astype(np.float32),
                      beats=vb[(vb >= -1.0) & (vb <= duration_s + 1.0)], hr_bpm=float(hr_true), resp_hz=resp_hz)
