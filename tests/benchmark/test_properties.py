"""Property-based checks (Hypothesis) of the evaluation chain and the metrics (issue 17): invariances
that must hold for any signal, not only for the hand-picked ones of the example tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import metrics as M
from benchmark import signal as S
from benchmark.evaluate import EvalConfig, RecordSignal, evaluate_signals

FS = 30.0
FAST = settings(max_examples=25, deadline=None, derandomize=True)  # same examples every run: no flaky CI


def _pulse(hr_bpm: float, phase: float, n: int, harmonic: float, seed: int) -> np.ndarray:
    t = np.arange(n) / FS
    rng = np.random.default_rng(seed)
    f = hr_bpm / 60.0
    return np.sin(2 * np.pi * f * t + phase) + harmonic * np.sin(4 * np.pi * f * t + 2 * phase) + 0.2 * rng.normal(size=n)


signals = st.builds(_pulse, st.floats(48.0, 140.0), st.floats(0.0, 2 * np.pi), st.integers(150, 900),
                    st.floats(0.0, 0.6), st.integers(0, 2**16))


@FAST
@given(signals, st.floats(0.01, 100.0), st.floats(-1e3, 1e3), st.booleans())
def test_hr_does_not_change_with_gain_offset_sign_or_time_reversal(x, gain, offset, flip):
    hr = S.hr_spectrum(x, FS)
    y = (-gain if flip else gain) * x + offset
    assert S.hr_spectrum(y, FS) == pytest.approx(hr, abs=1e-6)
    # reversal keeps the periodogram up to the periodic Hann window's one-sample asymmetry: within one 0.05-bpm bin
    assert S.hr_spectrum(x[::-1], FS) == pytest.approx(hr, abs=0.05)


@FAST
@given(signals, st.floats(0.1, 10.0), st.floats(-50.0, 50.0))
def test_window_hrs_ignore_the_prediction_scale_and_a_constant_label_offset(x, gain, offset):
    n = len(x)
    ref = np.roll(x, 3)
    base = evaluate_signals([RecordSignal("r", "s", "d", FS, x, ref)], EvalConfig(window_s=5.0, n_boot=0))[1]
    moved = evaluate_signals([RecordSignal("r", "s", "d", FS, gain * x + offset, ref + offset)], EvalConfig(window_s=5.0, n_boot=0))[1]
    assert len(base) == len(moved) == len(S.windows(n, FS, 5.0))
    np.testing.assert_allclose(moved["hr_pred"], base["hr_pred"], atol=1e-6)
    np.testing.assert_allclose(moved["hr_ref"], base["hr_ref"], atol=1e-6)


@FAST
@given(st.lists(st.tuples(st.floats(40.0, 180.0), st.floats(40.0, 180.0)), min_size=2, max_size=60))
def test_metric_identities(pairs):
    pred, ref = np.array(pairs).T
    assert M.mae(pred, ref) <= M.rmse(pred, ref) + 1e-9
    assert M.mae(ref, ref) == M.rmse(ref, ref) == M.mape(ref, ref) == 0.0
    assert M.mae(pred, ref) == pytest.approx(M.mae(ref, pred))


@FAST
@given(st.integers(2, 5000), st.sampled_from([10.0, 25.0, 30.0, 60.0]), st.one_of(st.none(), st.floats(1.0, 60.0)))
def test_windows_tile_the_record_without_gaps_or_overlap(n, fs, window_s):
    w = S.windows(n, fs, window_s)
    assert w[0][0] == 0 and w[-1][1] == n
    assert all(a < b for a, b in w) and all(b == a2 for (_, b), (a2, _) in zip(w, w[1:]))
    if window_s is not None and len(w) > 1:
        assert all(b - a >= round(window_s * fs) for a, b in w)
