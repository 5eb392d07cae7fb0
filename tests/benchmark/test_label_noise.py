"""Label-noise models: identity at severity 0, error rising with severity, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import signal as sig
from benchmark.label_noise import ORDER, NoiseModel
from benchmark.labels import build_label_pipeline, create_label_transform, list_label_transforms
from conftest import clean_ppg

FPS = 30.0
SEEDS = range(5)
ALL = (*ORDER, "label_noise")


@pytest.fixture(scope="module")
def clean_labels() -> list[np.ndarray]:
    return [clean_ppg(s) for s in SEEDS]


# ---- error measures, one per kind of harm ------------------------------------------------------
def _one_minus_r(y, x):
    return 1.0 - sig.pearson(y, x)


def _lag_s(y, x, max_s: float = 1.0) -> float:
    """|lag| (s) at the cross-correlation maximum of the z-scored signals within ±max_s."""
    a, b = sig.standardize(y), sig.standardize(x)
    n, m = len(a), int(max_s * FPS)
    cc = [np.dot(a[k:], b[: n - k]) / (n - k) if k >= 0 else np.dot(a[: n + k], b[-k:]) / (n + k) for k in range(-m, m + 1)]
    return abs(int(np.argmax(cc)) - m) / FPS


def _hr_error_bpm(y, x) -> float:
    """Mean |spectral HR difference| over 6-s windows with a 1-s step."""
    errs = [abs(sig.hr_spectrum(y[s:e], FPS) - sig.hr_spectrum(x[s:e], FPS)) for s, e in sig.windows(len(x), FPS, 6, overlap=5 / 6)]
    return float(np.mean(errs))


def _one_minus_macc(y, x):
    return 1.0 - sig.macc(y, x, max_lag=int(FPS))


MEASURES = {
    "gaussian_noise": _one_minus_r,
    "baseline_wander": _one_minus_r,
    "motion_bursts": _one_minus_r,
    "dropouts": _one_minus_r,
    "morphology": _one_minus_r,
    "time_lag": _lag_s,
    "wrong_rate": _hr_error_bpm,
    "label_noise": _one_minus_macc,  # includes a lag, so compare at the best lag
}


# ---- registry / config ---------------------------------------------------------------------------
def test_all_models_registered_and_documented():
    names = list_label_transforms()
    for name in ALL:
        assert name in names
        t = create_label_transform(name, severity=1)
        assert t.scope == "record"
        if isinstance(t, NoiseModel):  # each model says which real failure it imitates
            assert t.imitates and "Imitates" in (type(t).__doc__ or "")


def test_build_from_config_specs():
    pipe = build_label_pipeline(
        [{"name": "gaussian_noise", "severity": 2}, {"name": "label_noise", "severity": 1, "kinds": ["dropouts"]}, "standardized"]
    )
    assert [t.name for t in pipe] == ["gaussian_noise", "label_noise", "standardized"]
    assert pipe[1].kinds == ["dropouts"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [-1, 4, 1.5, True, "2", float("nan"), None])
def test_severity_outside_range_raises(name, bad):
    with pytest.raises(ValueError, match="0–3"):
        create_label_transform(name, severity=bad)


def test_bad_model_options_raise():
    with pytest.raises(ValueError, match="valid"):
        create_label_transform("label_noise", kinds=["gaussian_noise", "hum"])
    with pytest.raises(ValueError, match="not applied"):
        create_label_transform("label_noise", kinds=["gaussian_noise"], params={"dropouts": {"mode": "flat"}})
    with pytest.raises(ValueError, match="mode"):
        create_label_transform("dropouts", mode="zero")
    with pytest.raises(ValueError, match="direction"):
        create_label_transform("time_lag", direction="sideways")


@pytest.mark.parametrize("name", ALL)
def test_bad_label_raises(name):
    t = create_label_transform(name, severity=2)
    with pytest.raises(ValueError, match="1-D"):
        t(np.zeros((10, 2)), FPS, np.random.default_rng(0))
    with pytest.raises(ValueError, match="NaN"):
        t(np.array([0.0, np.nan, 1.0]), FPS, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sampling rate"):
        t(np.ones(100), 0.0, np.random.default_rng(0))


# ---- behaviour -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_severity_zero_is_bitwise_identity(name, clean_labels):
    t = create_label_transform(name, severity=0)
    for x in clean_labels[:2]:
        y = t(x, FPS, np.random.default_rng(0))
        assert y.dtype == np.float64 and y.tobytes() == x.tobytes()
        assert y is not x
    x32 = clean_labels[0].astype(np.float32)
    y = t(x32, FPS, np.random.default_rng(0))
    assert y.dtype == np.float64 and np.array_equal(y, x32.astype(np.float64))


@pytest.mark.parametrize("name", ALL)
def test_error_rises_strictly_with_severity(name, clean_labels):
    measure = MEASURES[name]
    means = []
    for sev in range(4):
        t = create_label_transform(name, severity=sev)
        means.append(np.mean([measure(t(x, FPS, np.random.default_rng(s)), x) for s, x in zip(SEEDS, clean_labels)]))
    assert means[0] == pytest.approx(0.0, abs=1e-9)
    assert means[0] < means[1] < means[2] < means[3], f"{name}: mean error per severity {means}"


@pytest.mark.parametrize("name", ALL)
def test_seeded_and_shape_preserving(name, clean_labels):
    x = clean_labels[0]
    t = create_label_transform(name, severity=3)
    a = t(x, FPS, np.random.default_rng(11))
    b = t(x, FPS, np.random.default_rng(11))
    c = t(x, FPS, 11)  # a seed works as well as a generator
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert a.shape == x.shape and np.all(np.isfinite(a))
    if name != "time_lag":  # the default lag is deterministic
        assert not np.array_equal(a, t(x, FPS, np.random.default_rng(12)))
    short = x[:90]  # 3 s: segment-based models must still fit
    assert t(short, FPS, np.random.default_rng(0)).shape == short.shape


def test_composite_is_order_free_and_kinds_draw_independently(clean_labels):
    x = clean_labels[1]
    a = create_label_transform("label_noise", severity=2, kinds=["gaussian_noise", "baseline_wander"])
    b = create_label_transform("label_noise", severity=2, kinds=["baseline_wander", "gaussian_noise"])
    assert np.array_equal(a(x, FPS, np.random.default_rng(3)), b(x, FPS, np.random.default_rng(3)))
    # the Gaussian draw does not depend on which other kinds run: the noise added in the composite
    # of (wander + noise) is the same realisation (up to the std scaling) as noise alone
    wander = create_label_transform("label_noise", severity=2, kinds=["baseline_wander"])(x, FPS, np.random.default_rng(3))
    noise_alone = create_label_transform("label_noise", severity=2, kinds=["gaussian_noise"])(x, FPS, np.random.default_rng(3)) - x
    noise_in_composite = a(x, FPS, np.random.default_rng(3)) - wander
    assert sig.pearson(noise_alone, noise_in_composite) == pytest.approx(1.0, abs=1e-9)


def test_composite_passes_params_to_its_models(clean_labels):
    x = clean_labels[2]
    one = create_label_transform("label_noise", severity=3, kinds=["dropouts"], params={"dropouts": {"mode": "flat"}})
    y = one(x, FPS, np.random.default_rng(5))
    changed = y != x
    assert 0.2 < changed.mean() < 0.45  # ~30 % of the record replaced
    runs = np.flatnonzero(np.diff(y) == 0)
    assert len(runs) >= changed.sum() * 0.8  # replaced samples are flat runs


def test_time_lag_shifts_by_the_documented_amount(clean_labels):
    x = clean_labels[0]
    i = np.arange(len(x))
    for sev, lag_s in enumerate((0.0, 0.1, 0.25, 0.5)):
        d = lag_s * FPS  # 0, 3, 7.5, 15 samples: fractional lags interpolate linearly
        k = int(np.ceil(d))
        y = create_label_transform("time_lag", severity=sev)(x, FPS, np.random.default_rng(0))
        np.testing.assert_allclose(y[k:], np.interp(i[k:] - d, i, x), atol=1e-12)  # delay: label late
        z = create_label_transform("time_lag", severity=sev, direction="advance")(x, FPS, np.random.default_rng(0))
        np.testing.assert_allclose(z[: len(x) - k], np.interp(i[: len(x) - k] + d, i, x), atol=1e-12)
    # clock drift makes the lag grow along the record
    y = create_label_transform("time_lag", severity=1, drift_ppm=20000)(x, FPS, np.random.default_rng(0))
    assert _lag_s(y[-300:], x[-300:]) > _lag_s(y[:300], x[:300]) + 0.2


def test_dropouts_clip_stays_inside_the_signal_range(clean_labels):
    x = clean_labels[3]
    y = create_label_transform("dropouts", severity=3, mode="clip")(x, FPS, np.random.default_rng(1))
    assert x.min() <= y.min() and y.max() <= x.max()
    assert 0.1 < np.mean(y != x) < 0.3  # only inside segments, where the extremes are shaved


def test_morphology_keeps_beat_timing_and_damps_harmonics(clean_labels):
    x = clean_labels[1]
    y = create_label_transform("morphology", severity=3)(x, FPS, np.random.default_rng(0))
    assert _lag_s(y, x) == 0.0
    assert abs(sig.hr_spectrum(y, FPS) - sig.hr_spectrum(x, FPS)) < 1.0
    f, px = sig.power_spectrum(x, FPS)
    _, py = sig.power_spectrum(y, FPS)
    hr = sig.hr_spectrum(x, FPS) / 60
    harm = (f > 1.7 * hr) & (f < 4.0 * hr)
    fund = np.abs(f - hr) < 0.2
    assert py[harm].sum() / py[fund].sum() < 0.5 * px[harm].sum() / px[fund].sum()


def test_wrong_rate_is_continuous_and_keeps_sync(clean_labels):
    x = clean_labels[4]
    y = create_label_transform("wrong_rate", severity=3)(x, FPS, np.random.default_rng(2))
    # rate ≤ 1.3 → the steepest step grows by at most 30 % (no glitch jumps)
    assert np.abs(np.diff(y)).max() <= 1.3 * np.abs(np.diff(x)).max() + 1e-9
    assert np.mean(y != x) > 0.3
    assert _lag_s(y, x) == 0.0  # segments re-synchronise at their ends
