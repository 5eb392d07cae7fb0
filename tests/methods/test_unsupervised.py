"""The seven training-free methods: contract (shape, finiteness, input checks) and behaviour
(heart rate recovered on clean synthetic video, invariance to colour-neutral light changes)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.method import MethodConfigError, UnsupervisedMethod
from benchmark.registry import create_method, list_methods
from benchmark.signal import hr_spectrum, postprocess
from methods._unsupervised_common import min_frames
from protocols.synthetic import SyntheticDataset

METHODS = ["green", "ica", "chrom", "pos", "lgi", "pbv", "omit"]
FS = 30.0


def _face_crop(frames: np.ndarray, box: tuple[int, int, int, int], coef: float = 1.5) -> np.ndarray:
    """The face box enlarged ×coef about its centre and clipped, as preprocessing crops it."""
    x, y, w, h = box
    height, width = frames.shape[1:3]
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = int(round(max(0, cx - coef * w / 2))), int(round(min(width, cx + coef * w / 2)))
    y0, y1 = int(round(max(0, cy - coef * h / 2))), int(round(min(height, cy + coef * h / 2)))
    return np.ascontiguousarray(frames[:, y0:y1, x0:x1])


@pytest.fixture(scope="module")
def lab_clips():
    """Two clean 12-s lab records (48×48 frames), face-cropped: [(frames, hr_bpm, ppg)]."""
    out = []
    for rec in SyntheticDataset(domain="lab", n_subjects=2, duration_s=12, frame_size=48, seed=0).records():
        out.append((_face_crop(rec.frames.read_all(), rec.meta["face_box"]), rec.meta["hr_bpm"], rec.ppg))
    return out


def test_all_registered_as_unsupervised():
    names = list_methods(kind="unsupervised")
    for name in METHODS:
        assert name in names
        assert isinstance(create_method(name), UnsupervisedMethod)


@pytest.mark.parametrize("name", METHODS)
def test_shape_finite_and_memmap(name, lab_clips, tmp_path):
    frames = lab_clips[0][0]
    method = create_method(name)
    out = method.predict(frames, FS)
    assert out.shape == (len(frames),)
    assert np.all(np.isfinite(out)) and out.std() > 0
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.uint8, shape=frames.shape)
    mm[:] = frames
    mm.flush()
    ro = np.load(tmp_path / "f.npy", mmap_mode="r")
    np.testing.assert_allclose(method.predict(ro, FS), out, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", METHODS)
def test_recovers_hr_on_clean_lab_video(name, lab_clips):
    for frames, hr, _ in lab_clips:
        est = hr_spectrum(postprocess(create_method(name).predict(frames, FS), FS), FS)
        tol = 2.0 if name in ("pos", "chrom") else 3.0
        assert est == pytest.approx(hr, abs=tol), (name, est, hr)


@pytest.mark.parametrize("name", ["pos", "chrom"])
def test_pos_chrom_follow_the_label_waveform(name, lab_clips):
    rs = []
    for frames, _, ppg in lab_clips:
        sig = postprocess(create_method(name).predict(frames, FS), FS)
        rs.append(abs(np.corrcoef(sig, postprocess(ppg, FS))[0, 1]))
    assert min(rs) > 0.65 and max(rs) > 0.9, rs


def _rgb_video(rgb: np.ndarray) -> np.ndarray:
    """(T, 3) float trace → (T, 16, 16, 3) uint8 video with a static texture (dithers rounding)."""
    rng = np.random.default_rng(0)
    tex = 1 + 0.05 * rng.standard_normal((16, 16, 1))
    return np.clip(np.rint(rgb[:, None, None, :] * tex[None]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "name, cfg", [("pos", {}), ("chrom", {}), ("lgi", {}), ("omit", {}), ("pbv", {"signature": (0.33, 0.77, 0.53)})]
)
def test_colour_neutral_light_change_is_suppressed(name, cfg):
    """A brightness flicker (all channels scaled alike) must hurt these far less than the same-size
    pulse along the blood-volume signature; GREEN, by design, cannot tell them apart."""
    t = np.arange(300) / FS
    base = np.array([170.0, 120.0, 100.0])
    wave = 0.01 * np.sin(2 * np.pi * 1.3 * t)
    neutral = _rgb_video(base * (1 + wave[:, None]))
    pulse = _rgb_video(base * (1 - wave[:, None] * np.array([0.33, 0.77, 0.53]) / 0.77))

    def power(video: np.ndarray, m: str, **kw) -> float:
        return float(np.var(postprocess(create_method(m, **kw).predict(video, FS), FS)))

    assert power(neutral, name, **cfg) < 0.05 * power(pulse, name, **cfg)
    assert power(neutral, "green") > 0.5 * power(pulse, "green")


def test_ica_is_deterministic(lab_clips):
    frames = lab_clips[0][0]
    np.testing.assert_array_equal(create_method("ica").predict(frames, FS), create_method("ica").predict(frames, FS))


def test_black_video_gives_zeros_not_nan():
    frames = np.zeros((90, 8, 8, 3), np.uint8)
    for name in METHODS:
        out = create_method(name).predict(frames, FS)
        assert out.shape == (90,) and np.all(np.isfinite(out))


def test_pbv_fixed_signature_and_config_check(lab_clips):
    frames, hr, _ = lab_clips[0]
    est = hr_spectrum(postprocess(create_method("pbv", signature=[0.33, 0.77, 0.53]).predict(frames, FS), FS), FS)
    assert est == pytest.approx(hr, abs=3.0)
    with pytest.raises(MethodConfigError):
        create_method("pbv", signature=[0, 0, 0])
    with pytest.raises(MethodConfigError):
        create_method("pos", window=1.6)  # unknown key


@pytest.mark.parametrize("name", METHODS)
def test_bad_inputs_raise(name):
    method = create_method(name)
    ok = np.full((90, 8, 8, 3), 100, np.uint8)
    for fps in (0.0, -30.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            method.predict(ok, fps)
    with pytest.raises(ValueError, match="at least"):
        method.predict(ok[: min_frames(FS) - 1], FS)
    with pytest.raises(ValueError, match="shape"):
        method.predict(ok[..., 0], FS)
    assert min_frames(FS) == 60 and min_frames(5.0) == 16
