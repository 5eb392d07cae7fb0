"""Synthetic world v3 (tiers): determinism, bad input, and each physical effect measured in a tiny render."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.signal import hr_spectrum, postprocess
from protocols.base import create_dataset
from protocols.synthetic import SyntheticDataset
from protocols.synthetic.physio import window_true_hr
from protocols.synthetic.skin import skin_reflectance
from protocols.synthetic.tiers import KNOBS, TIERS

TINY = dict(width=96, height=72, duration_s=6.0)
#: A quiet scene: no motion, steady light without flicker, fixed exposure and white balance, lossless.
QUIET = dict(tasks=["still"], motion_scale=0.0, lights=["daylight_window"], light_steps_per_min=0.0, flicker_depth=0.0,
             auto_exposure_s=0.0, awb_s=0.0, codecs=["none"], illuminance_lux=800.0, read_noise_e=1.0, jitter_ms=0.0)


def _record(tier: str = "pure_like", seed: int = 3, **kw):
    return next(SyntheticDataset(tier=tier, n_subjects=1, seed=seed, **{**TINY, **kw}).records())


def _face_trace(rec, frames: np.ndarray) -> np.ndarray:
    """Mean RGB per frame over the inner face box (T, 3)."""
    x, y, w, h = rec.meta["face_box"]
    return frames[:, y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].reshape(len(frames), -1, 3).mean(1)


def _pulse_std(trace: np.ndarray, fps: float) -> float:
    return float(postprocess(trace - trace.mean(), fps, (0.7, 3.0)).std())


def test_same_seed_same_frames_any_block_size_and_codec():
    for codec in ("none", "h264"):
        a = _record(seed=5, codecs=[codec], duration_s=3.0)
        b = _record(seed=5, codecs=[codec], duration_s=3.0)
        fa = a.frames.read_all()
        fb = np.concatenate(list(b.frames.iter_blocks(7)))
        assert fa.shape == (90, 72, 96, 3) and fa.dtype == np.uint8
        assert np.array_equal(fa, fb), codec
        assert np.array_equal(a.frames.render(40, 70), fa[40:70])  # random access renders only the chunks needed
        assert np.array_equal(a.ppg, b.ppg) and a.meta["beat_times_s"] == b.meta["beat_times_s"]
    assert not np.array_equal(fa, _record(seed=6, codecs=["h264"], duration_s=3.0).frames.read_all())


def test_tier_layout_meta_and_true_hr():
    ds = SyntheticDataset(tier="pure_like", n_subjects=2, records_per_subject=6, seed=1, **TINY)
    recs = list(ds.records())
    assert [r.id for r in recs][:3] == ["s00_r0", "s00_r1", "s00_r2"] and len(recs) == 12
    assert [r.meta["task"] for r in recs[:6]] == list(TIERS["pure_like"]["tasks"])  # every subject does the six tasks
    rec = recs[0]
    assert rec.dataset == "synthetic_pure_like" and rec.frames.width == 96 and rec.frames.height == 72
    true_hr = window_true_hr(np.asarray(rec.meta["beat_times_s"]), 0.0, 6.0)
    assert abs(true_hr - rec.meta["hr_bpm"]) < 1e-3  # beat times are stored to 0.1 ms
    label_hr = hr_spectrum(postprocess(rec.ppg, rec.fps, (0.6, 3.3)), rec.fps)
    assert abs(label_hr - true_hr) < 6.0  # the finger label carries the same beats
    assert create_dataset("synthetic", tier="ubfc_like", n_subjects=1, **TINY).key() != ds.key()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(tier="lab_like"), r"unknown tier 'lab_like'; valid: ubfc_like, pure_like, mmpd_like, train_mix"),
        (dict(tier="pure_like", shininess=3), r"unknown knob\(s\) shininess; valid: face_fraction, .*codecs"),
        (dict(tier="pure_like", skin_type=(0.5, 3)), r"skin_type=.*out of range; allowed: 1.0 <= lo <= hi <= 6.0"),
        (dict(tier="pure_like", crf=60), r"crf=60 out of range; allowed: 0.0 <= lo <= hi <= 51.0"),
        (dict(tier="pure_like", pbv_jitter=2), r"pbv_jitter=2 out of range; allowed: \[0.0, 0.5\]"),
        (dict(tier="pure_like", tasks=["dancing"]), r"invalid choice\(s\) \['dancing'\]; valid: still, game"),
        (dict(tier="pure_like", codecs=["av1"]), r"valid: none, h264, mjpeg"),
        (dict(tier="pure_like", width=10), r"width=10 out of range; allowed: integer >= 48"),
        (dict(tier="pure_like", domain="lab"), r"either tier= .* or domain="),
    ],
)
def test_bad_input_names_what_is_valid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticDataset(n_subjects=1, duration_s=2, **kwargs)


def test_every_tier_sets_every_knob_within_range():
    for tier in TIERS:
        ds = SyntheticDataset(tier=tier, n_subjects=1, duration_s=2)
        assert set(ds.knobs) == set(KNOBS)


def test_darker_skin_lower_relative_pulse():
    # Model: melanin lowers the pulse-carrying fraction of the diffuse light, most in blue.
    _, light = skin_reflectance(1.0)
    _, dark = skin_reflectance(6.0)
    assert np.all(dark < light) and dark[2] < dark[0]
    # Pixels (linearised: sRGB gamma alone would make darker pixels' relative change larger): same
    # subject draws except the skin type.
    amps = {}
    for st in (1.0, 6.0):
        rec = _record(skin_type=st, pulse_amplitude=0.01, ccm=0.0, bcg_um=0.0, **QUIET)  # raw sensor colours, no BCG edges
        v = rec.frames.read_all() / 255.0
        tr = _face_trace(rec, np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4))
        amps[st] = _pulse_std(tr[:, 1] / tr[:, 1].mean(), rec.fps)
    assert amps[6.0] < 0.8 * amps[1.0]


def test_specular_adds_light_but_no_pulse():
    out = {}
    for spec in (0.0, 0.4):
        rec = _record(specular=spec, pulse_amplitude=0.01, bcg_um=0.0, **QUIET)
        tr = _face_trace(rec, rec.frames.read_all().astype(np.float64))
        out[spec] = (tr[:, 1].mean(), _pulse_std(tr[:, 1], rec.fps))
    assert out[0.4][0] > out[0.0][0] + 1.0  # the highlight brightens the face
    assert out[0.4][1] == pytest.approx(out[0.0][1], rel=0.25)  # ... but adds no pulsatile light


def test_bcg_moves_the_head_at_the_heart_rate():
    shifts = {}
    for bcg in (0.0, 1000.0):
        rec = _record(bcg_um=bcg, pulse_amplitude=0.0005, face_fraction=0.6, **QUIET)
        f = rec.frames.read_all().astype(np.float64).mean(-1)
        mean = f.mean(0)
        gy = np.gradient(mean, axis=0)
        x, y, w, h = rec.meta["face_box"]
        sl = (slice(None), slice(max(0, y - 4), y + h + 4), slice(x, x + w))
        d = (f - mean)[sl].reshape(len(f), -1) @ gy[sl[1:]].reshape(-1) / (gy[sl[1:]] ** 2).sum()  # vertical shift, px
        shifts[bcg] = (postprocess(d, rec.fps, (0.7, 3.0)), rec)
    moved, rec = shifts[1000.0]
    assert moved.std() > 3 * shifts[0.0][0].std()
    assert abs(hr_spectrum(moved, rec.fps) - rec.meta["hr_bpm"]) < 8.0
    assert np.ptp(moved) < 1.0  # sub-pixel


def test_compression_is_applied():
    raw = _record(codecs=["none"], **{k: v for k, v in QUIET.items() if k != "codecs"}).frames.read_all().astype(np.int16)
    for codec, kw in (("h264", {"crf": 35}), ("mjpeg", {"jpeg_quality": 30})):
        comp = _record(codecs=[codec], **kw, **{k: v for k, v in QUIET.items() if k != "codecs"}).frames.read_all().astype(np.int16)
        diff = np.abs(comp - raw).mean()
        assert 0.3 < diff < 20, codec


def test_legacy_domain_still_default():
    from protocols.synthetic import LegacyDataset

    ds = SyntheticDataset(n_subjects=1, duration_s=2, frame_size=32)  # no tier: the legacy lab domain (rendering: test_synthetic.py)
    assert isinstance(ds, LegacyDataset) and ds.key().startswith("synthetic-lab-") and ds.name == "synthetic"


def test_tier_protocols_build_their_datasets():
    from pathlib import Path

    import yaml

    from protocols.protocol import Protocol

    conf = Path(__file__).resolve().parents[2] / "benchmark" / "conf" / "protocol"
    names = sorted(p.stem for p in conf.glob("synthetic_*_like.yaml"))
    assert names == [f"synthetic_{kind}_{t}" for kind in ("cross", "intra") for t in ("mmpd_like", "pure_like", "ubfc_like")]
    for name in names:
        proto = Protocol.from_config(yaml.safe_load((conf / f"{name}.yaml").read_text()))
        tiers = {proto.loader(alias).tier for alias in proto.datasets}
        assert tiers == ({"train_mix", name.split("_", 2)[2]} if "cross" in name else {name.split("_", 2)[2]})
