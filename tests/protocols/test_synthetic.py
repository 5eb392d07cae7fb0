"""Synthetic dataset: determinism, layout, physiology in the pixels, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.signal

from benchmark.signal import detrend, hr_spectrum, postprocess, power_spectrum
from protocols.base import create_dataset
from protocols.synthetic import SyntheticDataset

TINY = dict(n_subjects=3, duration_s=12, frame_size=48)


def _crop(frames: np.ndarray, box: tuple[int, int, int, int], coef: float = 1.5) -> np.ndarray:
    """Crop the face box enlarged ×coef about its centre, clipped to the frame (as preprocessing)."""
    x, y, w, h = box
    height, width = frames.shape[1:3]
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = int(round(max(0, cx - coef * w / 2))), int(round(min(width, cx + coef * w / 2)))
    y0, y1 = int(round(max(0, cy - coef * h / 2))), int(round(min(height, cy + coef * h / 2)))
    return frames[:, y0:y1, x0:x1]


@pytest.fixture(scope="module")
def lab_records():
    return list(SyntheticDataset(domain="lab", seed=0, **TINY).records())


@pytest.fixture(scope="module")
def lab_frames(lab_records):
    return [r.frames.read_all() for r in lab_records]


def test_records_layout(lab_records, lab_frames):
    assert [r.id for r in lab_records] == ["s00_r0", "s01_r0", "s02_r0"]
    for rec, frames in zip(lab_records, lab_frames):
        assert rec.subject == rec.id.split("_")[0]
        assert rec.dataset == "synthetic_lab"
        assert rec.fps == 30.0
        assert frames.shape == (360, 48, 48, 3) and frames.dtype == np.uint8
        assert rec.ppg.shape == (360,) and np.all(np.isfinite(rec.ppg))
        for key in ("face_box", "hr_bpm", "skin_tone", "domain", "knobs"):
            assert key in rec.meta
        assert 43.0 <= rec.meta["hr_bpm"] <= 155.0
    wild = list(SyntheticDataset(domain="wild", n_subjects=1, duration_s=4, frame_size=48).records())
    assert wild[0].dataset == "synthetic_wild"


def test_ids_sort_with_many_subjects():
    ids = [r.id for r in SyntheticDataset(n_subjects=12, records_per_subject=2, duration_s=2, frame_size=32).records()]
    assert ids == sorted(ids) and len(ids) == 24 and ids[:3] == ["s00_r0", "s00_r1", "s01_r0"]


def test_same_seed_same_output_any_block_size(lab_records, lab_frames):
    again = list(SyntheticDataset(domain="lab", seed=0, **TINY).records())
    for a, b, fa in zip(lab_records, again, lab_frames):
        np.testing.assert_array_equal(a.ppg, b.ppg)
        np.testing.assert_array_equal(fa, b.frames.read_all())
        assert a.meta["face_box"] == b.meta["face_box"]
    rec = lab_records[0]
    for block in (1, 7, 50, 1000):
        np.testing.assert_array_equal(np.concatenate(list(rec.frames.iter_blocks(block))), lab_frames[0])
    np.testing.assert_array_equal(rec.frames.render(45, 110), lab_frames[0][45:110])


def test_wild_is_deterministic_too():
    kw = dict(domain="wild", n_subjects=1, duration_s=3, frame_size=48, seed=5, jpeg_quality=80)
    a = next(SyntheticDataset(**kw).records())
    b = next(SyntheticDataset(**kw).records())
    np.testing.assert_array_equal(a.frames.read_all(), b.frames.read_all())
    np.testing.assert_array_equal(np.concatenate(list(a.frames.iter_blocks(13))), b.frames.read_all())


def test_different_seed_differs(lab_records, lab_frames):
    other = next(SyntheticDataset(domain="lab", seed=1, **TINY).records())
    assert not np.array_equal(other.ppg, lab_records[0].ppg)
    assert not np.array_equal(other.frames.read_all(), lab_frames[0])


def test_key_tracks_every_parameter():
    base = SyntheticDataset(**TINY)
    keys = {
        base.key(),
        SyntheticDataset(seed=1, **TINY).key(),
        SyntheticDataset(domain="wild", **TINY).key(),
        SyntheticDataset(noise_std=2.0, **TINY).key(),
        SyntheticDataset(n_subjects=4, duration_s=12, frame_size=48).key(),
        SyntheticDataset(fps=25, n_subjects=3, duration_s=12, frame_size=48).key(),
    }
    assert len(keys) == 6
    assert base.key() == SyntheticDataset(**TINY).key()
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", k) for k in keys)
    # a preset value passed explicitly is the same dataset
    assert SyntheticDataset(noise_std=0.5, **TINY).key() == base.key()


def test_registered_and_hydra_friendly():
    ds = create_dataset(
        "synthetic", domain="lab", n_subjects=1, duration_s=2.0, frame_size=32, skin_tone_range=[0.2, 0.3]
    )
    assert ds.knobs.skin_tone_range == (0.2, 0.3)


def test_face_box_inside_frame_and_tight(lab_records):
    for rec in lab_records:
        x, y, w, h = rec.meta["face_box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 48 and y + h <= 48
        skin = rec.frames.skin_mask() > 0.5
        ys, xs = np.nonzero(skin)
        assert x <= xs.min() and xs.max() < x + w and y <= ys.min() and ys.max() < y + h
        assert w * h <= 1.3 * (np.ptp(xs) + 1) * (np.ptp(ys) + 1)  # tight: not a loose guess
    wild = next(SyntheticDataset(domain="wild", n_subjects=1, duration_s=10, frame_size=64).records())
    x, y, w, h = wild.meta["face_box"]
    assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64


def test_pulse_amplitude_in_skin_pixels(lab_records, lab_frames):
    for rec, frames in zip(lab_records, lab_frames):
        skin = rec.frames.skin_mask() > 0.99
        g = frames[:, skin, 1].astype(np.float64).mean(axis=1)  # (T,)
        label = rec.ppg - rec.ppg.mean()
        slope = np.polyfit(label, g, 1)[0]
        p2p = np.percentile(rec.ppg, 98) - np.percentile(rec.ppg, 2)
        rel = abs(slope) * p2p / g.mean()
        assert 0.001 <= rel <= 0.01, rel
        assert rel == pytest.approx(rec.meta["pulse_amplitude"], rel=0.25)
        assert slope < 0  # more blood, darker skin


def test_non_skin_pixels_carry_no_pulse(lab_records, lab_frames):
    fs = 30.0
    for rec, frames in zip(lab_records, lab_frames):
        hr_hz = rec.meta["hr_bpm"] / 60
        skin = rec.frames.skin_mask()

        def peak_ratio(mask: np.ndarray) -> float:
            x = detrend(frames[:, mask, 1].astype(np.float64).mean(axis=1))
            f, p = power_spectrum(x, fs)
            band = (f >= 0.7) & (f <= 3.0)
            near = band & (np.abs(f - hr_hz) < 0.05)
            return float(p[near].max() / np.median(p[band]))

        assert peak_ratio(skin > 0.99) > 100
        assert peak_ratio(skin == 0) < 20  # background, hair, eyes, brows, torso: noise only


def test_label_matches_known_hr(lab_records):
    for rec in lab_records:
        est = hr_spectrum(postprocess(rec.ppg, rec.fps), rec.fps)
        assert est == pytest.approx(rec.meta["hr_bpm"], abs=3.0)


@pytest.mark.parametrize("lag_s, expected", [(0.0, 0), (0.2, 6)])
def test_label_lag(lag_s, expected):
    ds = SyntheticDataset(domain="lab", n_subjects=1, duration_s=10, frame_size=32, seed=3, label_lag_s=lag_s)
    rec = next(ds.records())
    skin = rec.frames.skin_mask() > 0.99
    video = -rec.frames.read_all()[:, skin, 1].astype(np.float64).mean(axis=1)  # darker = more blood
    label = rec.ppg
    xc = scipy.signal.correlate(label - label.mean(), video - video.mean(), mode="full")
    lag = int(np.argmax(xc)) - (len(label) - 1)
    assert lag == expected  # the finger label trails the facial pulse by label_lag_s


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fps=0), "fps"),
        (dict(fps=-30), "fps"),
        (dict(duration_s=1.5), "duration"),
        (dict(n_subjects=0), "n_subjects"),
        (dict(domain="mars"), "domain"),
        (dict(frame_size=16), "frame_size"),
        (dict(jpeg_quality=101), "jpeg"),
        (dict(skin_tone_range=(0.5, 0.2)), "skin_tone_range"),
        (dict(noise_std=-1), "noise_std"),
        (dict(light_oscillation=-0.01), "light_oscillation"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticDataset(**kwargs)


def test_light_oscillation_is_an_in_band_colour_neutral_light_change():
    """The stress knob adds a lamp oscillation inside the pulse band (0.8–3 Hz), the same relative
    size in R, G and B; it is off in both presets and changes the dataset key."""
    kw = dict(domain="lab", n_subjects=1, duration_s=12, frame_size=48, seed=3, pulse_amplitude=(0.001, 0.001))
    base = SyntheticDataset(**kw)
    osc = SyntheticDataset(light_oscillation=0.02, **kw)
    assert base.knobs.light_oscillation == 0.0 and SyntheticDataset(domain="wild", **TINY).knobs.light_oscillation == 0.0
    assert base.key() != osc.key()
    a = next(base.records()).frames.read_all().astype(np.float64).mean(axis=(1, 2))
    b = next(osc.records()).frames.read_all().astype(np.float64).mean(axis=(1, 2))
    rel = b / b.mean(axis=0) - a / a.mean(axis=0)  # (T, 3) the oscillation alone, relative units
    f, p = power_spectrum(rel[:, 1] - rel[:, 1].mean(), 30.0)
    assert 0.7 <= f[np.argmax(p)] <= 3.2
    assert 0.01 < rel[:, 1].std() < 0.02  # a sine of amplitude 0.02 has σ ≈ 0.014
    np.testing.assert_allclose(rel.std(axis=0), rel[:, 1].std(), rtol=0.05)
