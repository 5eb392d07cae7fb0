"""Signal-quality indices (SQIs) of a contact-PPG label window: is this reference worth training on?

Pure functions on a 1-D label window ``x`` (T,) sampled at ``fps``:

* :func:`ppg_quality` — neurokit2's ``ppg_quality`` reduced to one number per window: ``templatematch``
  (mean beat-to-template correlation, Orphanidou et al. 2015; 1 = best), ``dissimilarity`` (Sabeti et
  al. 2019; 0 = best), ``skewness`` (Selvaraj et al. 2011 / Elgendi 2016; higher = better),
  ``kurtosis``, ``entropy``, and ``ho2025`` (fraction of samples inside inter-beat intervals on which
  two beat detectors agree, Ho et al. 2025; 1 = best). The label is first cleaned exactly as
  ``nk.ppg_clean(method="elgendi")`` does (Butterworth order 2, 0.5–8 Hz, zero-phase) but through
  :func:`benchmark.signal.bandpass`, which also works below 16 fps where neurokit's fixed 8 Hz
  cut-off is above Nyquist.
* :func:`spectral_snr_db` — the label's own spectral SNR: power within ±6 bpm (at least the spectral
  main lobe, see :func:`benchmark.signal.snr_db`) of its dominant peak in
  0.75–2.5 Hz and of that peak's 2nd harmonic, over the rest of the band (the evaluation SNR of
  :func:`benchmark.signal.snr_db` with the label's own HR as the reference).
* :func:`hr_agreement` — spectral HR vs peak HR of the label, and optionally vs the spectral HR of the
  matching video's rPPG signal (e.g. POS; the caller computes it, so this module never runs a method).
* :func:`label_sqis` — all of the above in one flat ``dict[str, float]``.

Beat-based indices (``templatematch``, ``dissimilarity``, ``ho2025``, peak HR) are ``nan`` when
neurokit finds fewer than 3 beats in the window: a window without detectable beats has no template,
and ``nan`` is its honest score (callers treat it as "fails every threshold").

>>> import numpy as np
>>> t = np.arange(300) / 30.0
>>> x = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 2.4 * t + 1.0)
>>> round(hr_agreement(x, 30.0)["hr_spectrum_bpm"], 1)
72.0
>>> round(spectral_snr_db(x, 30.0), 1)  # the signal bands cover the 10-s window's main lobe (±12 bpm)
33.1
"""

from __future__ import annotations

import warnings

import numpy as np

from benchmark import signal as sig

#: Methods of :func:`ppg_quality`, and whether each needs detected beats.
QUALITY_METHODS = {
    "templatematch": True,
    "dissimilarity": True,
    "ho2025": True,
    "skewness": False,
    "kurtosis": False,
    "entropy": False,
}
#: The quality methods bundled by :func:`label_sqis`.
DEFAULT_QUALITY = ("templatematch", "dissimilarity", "skewness", "ho2025")
#: Shortest window (s): neurokit's windowed indices (skewness, kurtosis, entropy) use 3-s windows.
MIN_SECONDS = 3.0
#: Elgendi cleaning band of ``nk.ppg_clean`` (Hz), order 2.
CLEAN_BAND = (0.5, 8.0)

_NK_DEGENERATE = (IndexError, ValueError, TypeError)  # what neurokit raises on beat-less input


def _check_window(x: np.ndarray, fps: float, where: str) -> tuple[np.ndarray, float]:
    fps = sig._check_fs(fps)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{where}: label window must be 1-D (T,), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: label window contains NaN or inf")
    if len(x) < MIN_SECONDS * fps:
        raise ValueError(f"{where}: label window of {len(x)} samples ({len(x) / fps:.2f} s) is shorter than {MIN_SECONDS} s")
    return x, fps


def clean(x: np.ndarray, fps: float) -> np.ndarray:
    """``nk.ppg_clean(x, fps, method="elgendi")``: zero-phase Butterworth order 2, 0.5–8 Hz (the upper
    edge capped just below Nyquist for low frame rates)."""
    return sig.bandpass(np.asarray(x, dtype=np.float64), fps, CLEAN_BAND, order=2)


def _peaks(cleaned: np.ndarray, fps: float) -> np.ndarray:
    """Beat indices from neurokit's default PPG detector (Elgendi 2013), empty when none are found."""
    import neurokit2 as nk

    try:
        info = nk.ppg_findpeaks(cleaned, sampling_rate=fps, method="elgendi")
    except _NK_DEGENERATE:
        return np.array([], dtype=int)
    return np.asarray(info["PPG_Peaks"], dtype=int)


def ppg_quality(x: np.ndarray, fps: float, method: str = "templatematch") -> float:
    """Mean of ``neurokit2.ppg_quality(clean(x), method=method)`` over the window.

    ``method``: one of :data:`QUALITY_METHODS`. ``ho2025`` is neurokit's ``"ici"`` method and needs an
    integer sampling rate, so ``fps`` is rounded for it (29.97 → 30: a 0.1 % timing error, far below
    its beat-matching tolerance). Returns ``nan`` for beat-based methods when fewer than 3 beats are
    detected.
    """
    import neurokit2 as nk

    if method not in QUALITY_METHODS:
        raise ValueError(f"unknown ppg_quality method {method!r}; valid: {', '.join(QUALITY_METHODS)}")
    x, fps = _check_window(x, fps, f"ppg_quality({method})")
    cl = clean(x, fps)
    kwargs: dict = {"sampling_rate": fps, "method": method}
    if QUALITY_METHODS[method]:
        peaks = _peaks(cl, fps)
        if len(peaks) < 3:
            return float("nan")
        if method == "ho2025":
            kwargs["sampling_rate"] = max(1, int(round(fps)))
        else:
            kwargs["peaks"] = peaks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit warns on short/odd windows; the result says enough
        try:
            q = np.asarray(nk.ppg_quality(cl, **kwargs), dtype=np.float64)
        except _NK_DEGENERATE:
            if QUALITY_METHODS[method]:
                return float("nan")
            raise
    return float(np.nanmean(q)) if np.isfinite(q).any() else float("nan")


def spectral_snr_db(
    x: np.ndarray,
    fps: float,
    band: tuple[float, float] = sig.DEFAULT_BAND,
    half_width_bpm: float = 6.0,
) -> float:
    """SNR (dB) of the label around its own dominant frequency.

    Power within ±``half_width_bpm`` of the spectral peak inside ``band`` and of its 2nd harmonic, over
    the remaining power inside ``band`` (periodogram of :func:`benchmark.signal.power_spectrum`).
    """
    x, fps = _check_window(x, fps, "spectral_snr_db")
    hr = sig.hr_spectrum(x, fps, band)
    return sig.snr_db(x, fps, hr, band, half_width_bpm)


def hr_agreement(
    label: np.ndarray,
    fps: float,
    video_signal: np.ndarray | None = None,
    band: tuple[float, float] = sig.DEFAULT_BAND,
) -> dict[str, float]:
    """Heart rates (bpm) of one window by independent routes, and their pairwise absolute differences.

    ``hr_spectrum_bpm``: spectral peak of the cleaned label; ``hr_peaks_bpm``: mean inter-beat
    interval of neurokit's beats (``nan`` with < 2 beats); with ``video_signal`` (the rPPG signal of
    the same frames, e.g. POS output, same length as the label) also ``hr_video_bpm``: its spectral
    peak after the evaluation post-processing (detrend + band-pass). Differences ``d_<a>_<b>_bpm``.
    A good label agrees with itself (spectrum vs peaks) and, on a still subject, with the video.
    """
    x, fps = _check_window(label, fps, "hr_agreement")
    cl = clean(x, fps)
    out = {"hr_spectrum_bpm": sig.hr_spectrum(cl, fps, band), "hr_peaks_bpm": sig.hr_peaks(cl, fps)}
    if video_signal is not None:
        v = np.asarray(video_signal, dtype=np.float64)
        if v.shape != x.shape:
            raise ValueError(f"hr_agreement: video signal shape {v.shape} does not match the label's {x.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("hr_agreement: video signal contains NaN or inf")
        out["hr_video_bpm"] = sig.hr_spectrum(sig.postprocess(v, fps, band), fps, band)
    keys = [k for k in ("spectrum", "peaks", "video") if f"hr_{k}_bpm" in out]
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            out[f"d_{a}_{b}_bpm"] = abs(out[f"hr_{a}_bpm"] - out[f"hr_{b}_bpm"])
    return {k: float(v) for k, v in out.items()}


def label_sqis(
    x: np.ndarray,
    fps: float,
    video_signal: np.ndarray | None = None,
    quality: tuple[str, ...] = DEFAULT_QUALITY,
) -> dict[str, float]:
    """All SQIs of one label window: the ``quality`` methods of :func:`ppg_quality` (keys = method
    names), ``snr_db`` (:func:`spectral_snr_db`) and the :func:`hr_agreement` entries.

    >>> import numpy as np
    >>> t = np.arange(300) / 30.0
    >>> q = label_sqis(np.sin(2 * np.pi * 1.2 * t), 30.0, quality=("skewness",))
    >>> sorted(q)
    ['d_spectrum_peaks_bpm', 'hr_peaks_bpm', 'hr_spectrum_bpm', 'skewness', 'snr_db']
    """
    x, fps = _check_window(x, fps, "label_sqis")
    out = {m: ppg_quality(x, fps, m) for m in quality}
    out["snr_db"] = spectral_snr_db(x, fps)
    out.update(hr_agreement(x, fps, video_signal))
    return {k: float(v) for k, v in out.items()}
