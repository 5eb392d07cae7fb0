"""Label signal-quality indices: they must tell a clean label from a badly corrupted one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark import signal as sig
from benchmark import sqi
from benchmark.labels import create_label_transform
from conftest import clean_ppg

FPS = 30.0
N_PAIRS = 20


@pytest.fixture(scope="module")
def pairs() -> list[tuple[dict, dict]]:
    """(SQIs of the clean label, SQIs of its severity-3 composite-noise version) for 20 seeds."""
    noise = create_label_transform("label_noise", severity=3)
    out = []
    for s in range(N_PAIRS):
        x = clean_ppg(s)
        out.append((sqi.label_sqis(x, FPS), sqi.label_sqis(noise(x, FPS, np.random.default_rng(s)), FPS)))
    return out


def _share(pairs, key, better) -> float:
    """Fraction of pairs where the clean label scores better; a nan noisy score counts as worse."""
    wins = [math.isnan(n[key]) or better(c[key], n[key]) for c, n in pairs]
    return float(np.mean(wins))


@pytest.mark.parametrize(
    ("key", "better", "min_share"),
    [
        ("templatematch", lambda c, n: c > n, 0.9),
        ("snr_db", lambda c, n: c > n, 0.9),
        ("dissimilarity", lambda c, n: c < n, 0.9),
        ("ho2025", lambda c, n: c > n, 0.9),
        ("skewness", lambda c, n: c > n, 0.8),
        ("d_spectrum_peaks_bpm", lambda c, n: c < n, 0.7),
    ],
)
def test_sqis_separate_clean_from_severity3(pairs, key, better, min_share):
    for c, _ in pairs:
        assert math.isfinite(c[key])  # every index is defined on a clean label
    share = _share(pairs, key, better)
    assert share >= min_share, f"{key}: clean better in only {share:.0%} of {N_PAIRS} pairs"


def test_clean_labels_score_high(pairs):
    assert np.mean([c["templatematch"] for c, _ in pairs]) > 0.95
    assert np.mean([c["ho2025"] for c, _ in pairs]) > 0.95


def test_quality_falls_with_severity():
    xs = [clean_ppg(s) for s in range(6)]
    tm, snr = [], []
    for sev in range(4):
        t = create_label_transform("label_noise", severity=sev)
        ys = [t(x, FPS, np.random.default_rng(s)) for s, x in enumerate(xs)]
        tm.append(np.mean([sqi.ppg_quality(y, FPS, "templatematch") for y in ys]))
        snr.append(np.mean([sqi.spectral_snr_db(y, FPS) for y in ys]))
    assert tm[0] > tm[1] > tm[2] > tm[3], tm
    assert snr[0] > snr[1] > snr[2] > snr[3], snr


def test_spectral_snr_of_a_sinusoid_in_white_noise():
    rng = np.random.default_rng(0)
    t = np.arange(600) / FPS
    clean = np.sin(2 * np.pi * 1.3 * t)
    snrs = [sqi.spectral_snr_db(clean + rng.normal(0, s, len(t)), FPS) for s in (0.1, 0.5, 2.0)]
    assert snrs[0] > snrs[1] > snrs[2]
    # definition check: identical to the evaluation SNR with the label's own spectral HR as reference
    y = clean + rng.normal(0, 0.5, len(t))
    assert sqi.spectral_snr_db(y, FPS) == pytest.approx(sig.snr_db(y, FPS, sig.hr_spectrum(y, FPS)))


def test_hr_agreement_with_and_without_video():
    t = np.arange(600) / FPS
    label = np.sin(2 * np.pi * 1.2 * t) + 0.4 * np.sin(2 * np.pi * 2.4 * t + 0.7)  # 72 bpm
    rng = np.random.default_rng(1)
    video_same = 0.2 * np.sin(2 * np.pi * 1.2 * t + 1.0) + rng.normal(0, 0.05, len(t)) + 0.01 * t
    video_off = 0.2 * np.sin(2 * np.pi * 1.5 * t) + rng.normal(0, 0.05, len(t))  # 90 bpm

    a = sqi.hr_agreement(label, FPS)
    assert set(a) == {"hr_spectrum_bpm", "hr_peaks_bpm", "d_spectrum_peaks_bpm"}
    assert a["hr_spectrum_bpm"] == pytest.approx(72.0, abs=0.5)
    assert a["hr_peaks_bpm"] == pytest.approx(72.0, abs=1.0)
    assert a["d_spectrum_peaks_bpm"] < 1.0

    b = sqi.hr_agreement(label, FPS, video_same)
    assert b["hr_video_bpm"] == pytest.approx(72.0, abs=0.5)
    assert b["d_spectrum_video_bpm"] < 1.0 and b["d_peaks_video_bpm"] < 1.5
    c = sqi.hr_agreement(label, FPS, video_off)
    assert c["d_spectrum_video_bpm"] == pytest.approx(18.0, abs=1.0)

    with pytest.raises(ValueError, match="does not match"):
        sqi.hr_agreement(label, FPS, video_same[:-1])


def test_label_sqis_bundles_everything():
    x = clean_ppg(0, duration=10.0)
    t = np.arange(len(x)) / FPS
    out = sqi.label_sqis(x, FPS, video_signal=np.sin(2 * np.pi * 1.2 * t))
    assert set(out) == {
        "templatematch", "dissimilarity", "skewness", "ho2025", "snr_db",
        "hr_spectrum_bpm", "hr_peaks_bpm", "hr_video_bpm",
        "d_spectrum_peaks_bpm", "d_spectrum_video_bpm", "d_peaks_video_bpm",
    }
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())


def test_beatless_window_gives_nan_for_beat_based_indices():
    flat = np.zeros(300)
    for m in ("templatematch", "dissimilarity", "ho2025"):
        assert math.isnan(sqi.ppg_quality(flat, FPS, m))
    assert math.isfinite(sqi.ppg_quality(flat, FPS, "skewness"))


def test_non_integer_frame_rate_works_for_every_method():
    fps = 29.97
    x = clean_ppg(3, duration=12.0)
    for m in sqi.QUALITY_METHODS:
        assert math.isfinite(sqi.ppg_quality(x, fps, m)), m
    # 10 fps: the 8-Hz cleaning edge is capped below Nyquist instead of failing as nk.ppg_clean does
    assert math.isfinite(sqi.ppg_quality(x[::3], 10.0, "skewness"))


def test_bad_input_raises():
    x = clean_ppg(0, duration=10.0)
    with pytest.raises(ValueError, match="unknown ppg_quality method"):
        sqi.ppg_quality(x, FPS, "orphanidou")
    with pytest.raises(ValueError, match="shorter than"):
        sqi.label_sqis(x[:60], FPS)
    with pytest.raises(ValueError, match="NaN"):
        sqi.spectral_snr_db(np.where(np.arange(len(x)) == 5, np.nan, x), FPS)
    with pytest.raises(ValueError, match="1-D"):
        sqi.ppg_quality(np.stack([x, x]), FPS)
