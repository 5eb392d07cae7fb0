"""What ``rppg-bench predict`` reads from a recovered pulse wave (BVP): HR on sliding windows with
their quality, beats, HRV and respiration. Pure functions on numpy arrays.

**Quality** of a window: spectral SNR (power within the main lobe of the window's own HR peak and its
2nd harmonic over the rest of the band, :func:`benchmark.signal.snr_db`) and peak prominence (the HR
peak's power over the next-highest spectral peak outside its main lobe, dB). ``good``: SNR ≥ 3 dB and
prominence ≥ 3 dB; ``poor``: SNR < 0 dB or prominence < 1 dB; else ``fair``; ``no_face`` when a face
was found in under half of the window's seconds. Heuristics set on synthetic videos (a 10-s window of
white noise scores about −1 dB SNR and 0–2 dB prominence), not calibrated on real recordings; a
strong periodic motion or light artefact can score ``good`` at the wrong rate.

**HRV** (recordings ≥ 60 s): the BVP is band-passed to the recording's HR range ± 0.5 Hz
(:func:`beat_band`), band-limited-interpolated ×k to ≥ 240 Hz
(``scipy.signal.resample_poly``, so beat times are not quantised to the frame period), beats are
found with neurokit2's Elgendi detector, corrected with ``nk.signal_fixpeaks`` (Kubios: Lipponen &
Tarvainen 2019), and ``nk.hrv_time`` / ``nk.hrv_frequency`` give SDNN, RMSSD, pNN50 and LF/HF.
Limits: camera beats are noisier than ECG R peaks; RMSSD and pNN50 (beat-to-beat differences) are
the most sensitive to that noise, SDNN much less; LF (0.04–0.15 Hz) needs ≥ 2 min to be meaningful.

**Respiration** (recordings ≥ 30 s) comes from the BVP's respiratory modulations, not head motion:
the beat-to-beat frequency (respiratory sinus arrhythmia, RIFV) and amplitude (RIAV) series,
resampled at 4 Hz; their normalised Welch spectra are averaged (spectral fusion, after Karlen et al.
2013, IEEE TBME 60(7):1946) and the peak in 0.1–0.5 Hz (6–30 breaths/min) is the rate. Limits: it
needs visible RSA or amplitude modulation (weak in older subjects, absent when breath is held),
talking and motion at breathing rates confound it, and rates outside 6–30 /min are not found.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark import signal as sig

#: Pass band (Hz) of the BVP and of the HR search: 42–180 bpm (own videos may include exercise).
BAND = (0.7, 3.0)

#: HRV only from recordings at least this long (s); respiration from RESP_MIN_S.
HRV_MIN_S, RESP_MIN_S = 60.0, 30.0

#: HRV is flagged unreliable when fewer windows than this are good or fair (noisy beats inflate SDNN
#: and RMSSD). Necessary, not sufficient: on the synthetic acceptance videos beat times from a clean
#: 30-fps BVP still carry ~20–40 ms of jitter, which dominates when the true HRV is small (SDNN
#: 7–12 ms there came out 19–42 ms with every window good).
HRV_MIN_QUALITY = 0.8

#: quality thresholds (dB), see the module docstring
GOOD_DB, POOR_SNR_DB, POOR_PROM_DB = 3.0, 0.0, 1.0


def band_for(fps: float) -> tuple[float, float]:
    """:data:`BAND`, its upper edge kept below Nyquist for low frame rates.

    >>> band_for(30.0), band_for(5.0)
    ((0.7, 3.0), (0.7, 2.25))
    """
    return (BAND[0], min(BAND[1], 0.45 * float(fps)))


def prominence_db(x: np.ndarray, fps: float, band: tuple[float, float]) -> float:
    """Power of the highest spectral peak in ``band`` over the next-highest peak outside its main lobe
    (±2·fps/N Hz of a Hann periodogram), dB; ``inf`` when there is no second peak."""
    import scipy.signal

    f, p = sig.power_spectrum(x, fps)
    m = (f >= band[0]) & (f <= band[1])
    fb, pb = f[m], p[m]
    if len(pb) < 3 or pb.max() <= 0:
        return 0.0
    k = int(np.argmax(pb))
    lobe = 2.0 * fps / len(x)
    pk, _ = scipy.signal.find_peaks(pb)
    others = [pb[j] for j in pk if abs(fb[j] - fb[k]) > lobe]
    if not others or max(others) <= 0:
        return float("inf")
    return float(10 * np.log10(pb[k] / max(others)))


def hr_windows(bvp: np.ndarray, fps: float, face: np.ndarray, window_s: float, stride_s: float) -> list[dict[str, Any]]:
    """HR and quality on sliding windows (one window of the whole signal when shorter than ``window_s``)."""
    n = len(bvp)
    w = min(n, int(round(window_s * fps)))
    st = max(1, int(round(stride_s * fps)))
    band = band_for(fps)
    rows = []
    for s in range(0, n - w + 1, st):
        seg = bvp[s : s + w]
        hr = sig.hr_spectrum(seg, fps, band)
        snr = sig.snr_db(seg, fps, hr, band)
        prom = prominence_db(seg, fps, band)
        ff = float(np.mean(face[s : s + w])) if len(face) else 0.0
        if ff < 0.5:
            q = "no_face"
        elif snr >= GOOD_DB and prom >= GOOD_DB:
            q = "good"
        elif snr < POOR_SNR_DB or prom < POOR_PROM_DB:
            q = "poor"
        else:
            q = "fair"
        rows.append({"t_start_s": round(s / fps, 3), "t_end_s": round((s + w) / fps, 3), "hr_bpm": round(hr, 2), "quality": q,
                     "snr_db": round(snr, 2), "prominence_db": round(prom, 2) if math.isfinite(prom) else 99.0,
                     "face_fraction": round(ff, 3)})
    return rows


def median_hr(rows: Sequence[dict[str, Any]]) -> tuple[float, str]:
    """Median HR of the windows with a face (all windows when none has one).

    The SNR/prominence quality is not used to pick windows: a periodic motion artefact scores
    ``good`` at its own rate while the pulse under it scores ``poor`` (synthetic head rotation,
    ``predict_check`` video v09: the good/fair windows gave 65–68 bpm, the poor ones the true 84),
    and on the 13 acceptance videos leaving ``poor`` windows out moved no median closer to the truth
    beyond 2 bpm and moved two away from it.

    >>> median_hr([{"hr_bpm": 60.0, "quality": "good"}, {"hr_bpm": 70.0, "quality": "poor"}, {"hr_bpm": 99.0, "quality": "no_face"}])
    (65.0, 'windows with a face: 2 of 3')
    """
    face = [r for r in rows if r["quality"] != "no_face"]
    use, what = (face, "windows with a face") if face else (list(rows), "all windows (no face)")
    return (float(np.median([r["hr_bpm"] for r in use])) if use else float("nan")), f"{what}: {len(use)} of {len(rows)}"


def detect_beats(bvp: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Beat times (s) and amplitudes of the BVP: band-limited interpolation to ≥ 240 Hz, neurokit2's
    Elgendi detector, Kubios artefact correction. Returns (peak indices at the upsampled rate, the
    upsampled signal, its rate)."""
    import neurokit2 as nk
    import scipy.signal

    up = max(1, int(math.ceil(240.0 / fps)))
    fs = float(fps) * up
    x = scipy.signal.resample_poly(np.asarray(bvp, dtype=np.float64), up, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            peaks = np.asarray(nk.ppg_findpeaks(x, sampling_rate=int(round(fs)), method="elgendi")["PPG_Peaks"], dtype=int)
            if len(peaks) >= 4:
                _, peaks = nk.signal_fixpeaks(peaks, sampling_rate=int(round(fs)), iterative=True, method="Kubios")
                peaks = np.unique(np.asarray(peaks, dtype=int))
        except (IndexError, ValueError, TypeError):
            peaks = np.array([], dtype=int)
    peaks = peaks[(peaks >= 0) & (peaks < len(x))]
    return peaks, x, fs


def beat_band(bvp: np.ndarray, fps: float, rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """The BVP band-passed (Butterworth order 2, zero phase) to the HR range of the recording ± 0.5 Hz
    for beat detection: the 10th–90th percentile of the window HRs with a face. ±0.5 Hz keeps the
    respiratory sidebands (RSA up to 30 /min) that carry HRV and respiration, and removes the
    broadband noise that otherwise moves each detected beat (on the synthetic acceptance videos the
    beat-interval jitter fell from about 100 to 50 ms rms)."""
    hrs = [r["hr_bpm"] for r in rows if r["quality"] != "no_face"] or [r["hr_bpm"] for r in rows]
    if not hrs:
        return bvp
    lo, hi = np.percentile(hrs, [10, 90]) / 60.0
    band = band_for(fps)
    return sig.bandpass(bvp, fps, (max(band[0] - 0.2, lo - 0.5), min(band[1], hi + 0.5)), order=2)


def hrv(peaks: np.ndarray, fs: float) -> dict[str, float]:
    """SDNN, RMSSD (ms), pNN50 (%), LF/HF of beat indices at rate ``fs`` (neurokit2)."""
    import neurokit2 as nk

    rate = int(round(fs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = nk.hrv_time(peaks, sampling_rate=rate)
        try:
            f = nk.hrv_frequency(peaks, sampling_rate=rate)
            lfhf = float(f["HRV_LFHF"].iloc[0])
        except (IndexError, ValueError, TypeError, KeyError):
            lfhf = float("nan")
    out = {"sdnn_ms": float(t["HRV_SDNN"].iloc[0]), "rmssd_ms": float(t["HRV_RMSSD"].iloc[0]),
           "pnn50_pct": float(t["HRV_pNN50"].iloc[0]), "lf_hf": lfhf, "n_beats": int(len(peaks))}
    return {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else (v if isinstance(v, int) else None)) for k, v in out.items()}


def respiration_rate(peaks: np.ndarray, x: np.ndarray, fs: float) -> float | None:
    """Breaths/min from the RIFV and RIAV series of the beats (spectral fusion; module docstring)."""
    import scipy.interpolate
    import scipy.signal

    if len(peaks) < 8:
        return None
    tb = peaks / fs
    ibi = np.diff(tb)
    tm = tb[1:]
    amp = x[peaks[1:]] - np.array([x[a:b].min() for a, b in zip(peaks[:-1], peaks[1:])])
    rs = 4.0
    grid = np.arange(tm[0], tm[-1], 1 / rs)
    if len(grid) < 64:
        return None
    spectra = []
    for series in (60.0 / ibi, amp):
        y = scipy.interpolate.CubicSpline(tm, series)(grid)
        y = scipy.signal.detrend(y)
        if not np.any(y):
            continue
        f, p = scipy.signal.welch(y, rs, nperseg=min(len(y), 256), nfft=max(1024, len(y)))
        m = (f >= 0.1) & (f <= 0.5)
        if p[m].sum() > 0:
            spectra.append(p / p[m].sum())
    if not spectra:
        return None
    pm = np.mean(spectra, axis=0)
    m = (f >= 0.1) & (f <= 0.5)
    return round(float(f[m][np.argmax(pm[m])] * 60.0), 2)
