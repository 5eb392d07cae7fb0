"""POS and CHROM against literal transcriptions of the published algorithms (issue 17), on one fixed
trace that mixes what they must separate: a pulse along the blood-volume direction, mains flicker
aliased into the band edge, and a specular (white, additive) component that moves with the head.

Each reference below is written from the paper, one window at a time in plain loops — deliberately
unlike the vectorised code under test — so a swapped α = σ1/σ2, a wrong projection row or a missing
per-window normalisation changes the result. Both must also recover the pulse rate where the
distortions are several times stronger than the pulse.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal

from benchmark.signal import hr_spectrum, rgb_traces
from methods.chrom import CHROM
from methods.pos import pos_signal

FS = 30.0
HR_BPM = 72.0


def _mixed_trace(n: int = 600) -> np.ndarray:
    """(n, 3) mean-skin RGB: skin tone × (1 + pulse along Pbv + flicker) + specular (white) + noise."""
    t = np.arange(n) / FS
    rng = np.random.default_rng(7)
    skin = np.array([0.62, 0.45, 0.37])
    pbv = np.array([0.33, 0.77, 0.53])  # blood-volume pulse signature (de Haan & van Leest 2014)
    pulse = 0.004 * np.sin(2 * np.pi * HR_BPM / 60 * t + 0.3)
    flicker = 0.01 * np.sin(2 * np.pi * 2.2 * t)  # intensity flicker aliased into the band (132 bpm)
    specular = 0.012 * (1 + np.sin(2 * np.pi * 0.9 * t + 1.0))  # head motion (54 /min) modulating a white highlight
    rgb = skin * (1 + pulse[:, None] * pbv / pbv.mean() + flicker[:, None]) + specular[:, None]
    return rgb * 200 + rng.normal(0, 0.02, (n, 3))


def _pos_reference(rgb: np.ndarray, fs: float) -> np.ndarray:
    """Wang et al. 2017, Algorithm 1, literally: for each n ≥ l: C_n = mean-normalised window,
    S = P·C_n, h = S1 + (σ(S1)/σ(S2))·S2, H[m..n] += h − mean(h); divided here by the number of
    windows covering each sample (the suite's documented edge convention)."""
    n_frames, l = len(rgb), math.ceil(1.6 * fs)
    p = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
    h_sum, cover = np.zeros(n_frames), np.zeros(n_frames)
    for n in range(l - 1, n_frames):
        m = n - l + 1
        c = rgb[m : n + 1].T  # (3, l)
        cn = c / c.mean(axis=1, keepdims=True)
        s1, s2 = p @ cn
        h = s1 + (np.std(s1) / np.std(s2)) * s2
        h_sum[m : n + 1] += h - h.mean()
        cover[m : n + 1] += 1
    return h_sum / cover


def _chrom_reference(rgb: np.ndarray, fs: float) -> np.ndarray:
    """de Haan & Jeanne 2013 with the toolbox's windowing: even window ⌈1.6 s⌉, half-window hop,
    X = 3R − 2G, Y = 1.5R + G − 1.5B on the mean-normalised window, both band-passed (Butterworth
    order 3, 0.7–2.5 Hz, zero-phase), S = Xf − (σ(Xf)/σ(Yf))·Yf, Hann-weighted overlap-add,
    divided by the summed weights; a last window aligned with the record end."""
    n_frames = len(rgb)
    win = math.ceil(1.6 * fs)
    win += win % 2
    sos = scipy.signal.butter(3, [0.7, 2.5], btype="bandpass", fs=fs, output="sos")
    hann = scipy.signal.windows.hann(win)
    starts = list(range(0, n_frames - win + 1, win // 2))
    if starts[-1] != n_frames - win:
        starts.append(n_frames - win)
    out, weight = np.zeros(n_frames), np.zeros(n_frames)
    for s in starts:
        c = rgb[s : s + win]
        cn = c / c.mean(axis=0)
        x = 3 * cn[:, 0] - 2 * cn[:, 1]
        y = 1.5 * cn[:, 0] + cn[:, 1] - 1.5 * cn[:, 2]
        pad = min(3 * (2 * len(sos) + 1), win - 1)
        xf = scipy.signal.sosfiltfilt(sos, x, padlen=pad)
        yf = scipy.signal.sosfiltfilt(sos, y, padlen=pad)
        out[s : s + win] += hann * (xf - (np.std(xf) / np.std(yf)) * yf)
        weight[s : s + win] += hann
    return out / np.maximum(weight, 1e-12)


def _hr(x: np.ndarray) -> float:
    return hr_spectrum(x - x.mean(), FS, (0.75, 2.5))


def test_distortions_dominate_the_raw_green_channel():
    """The trace is a real test: in the green channel alone the pulse is not the strongest in-band line."""
    assert abs(_hr(_mixed_trace()[:, 1]) - HR_BPM) > 10


def test_pos_equals_algorithm_1_and_recovers_the_pulse():
    rgb = _mixed_trace()
    ours = pos_signal(rgb, FS)
    np.testing.assert_allclose(ours, _pos_reference(rgb, FS), rtol=1e-9, atol=1e-12)
    assert abs(_hr(ours) - HR_BPM) < 1.0


def test_chrom_equals_the_published_combination_and_recovers_the_pulse():
    rgb = _mixed_trace()
    frames = np.repeat(np.repeat(rgb[:, None, None, :], 2, axis=1), 2, axis=2)  # (T, 2, 2, 3): a uniform patch
    ours = CHROM().predict(frames, FS)
    # the reference starts from the same spatial means (rgb_traces sums in float32 blocks: ~1e-7 relative)
    np.testing.assert_allclose(ours, _chrom_reference(rgb_traces(frames), FS), rtol=1e-9, atol=1e-12)
    assert abs(_hr(ours) - HR_BPM) < 1.0
