"""Known truth in scoring (issue 10.4): where a record carries its true beat times, every window is
also scored against the true HR, and the PPG-derived reference's own error is reported."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.evaluate import EvalConfig, RecordSignal, evaluate_signals

FS = 30.0


def _sine(bpm: float, n: int) -> np.ndarray:
    return np.sin(2 * np.pi * bpm / 60.0 * np.arange(n) / FS)


def test_windows_are_scored_against_the_true_beats_and_the_reference_error_is_reported():
    n = int(40 * FS)
    beats = np.arange(0.0, 40.0, 60.0 / 72.0)  # true HR 72 bpm
    # the prediction follows the truth; the contact-PPG reference is off by 3 bpm (a bad label)
    rs = RecordSignal("r0", "s0", "synth", FS, _sine(72.0, n), _sine(75.0, n), beat_times=beats)
    metrics, df = evaluate_signals([rs], EvalConfig(window_s=10.0, n_boot=0))
    assert metrics["mae_bpm"] == pytest.approx(3.0, abs=0.05)  # against the reference
    assert metrics["true_mae_bpm"] == pytest.approx(0.0, abs=0.05)  # against the truth
    assert metrics["ref_vs_true_mae_bpm"] == pytest.approx(3.0, abs=0.05)
    assert metrics["n_windows_true"] == 4 and df["hr_true"].to_numpy() == pytest.approx(72.0, abs=1e-6)


def test_without_beat_times_there_are_no_true_metrics():
    n = int(20 * FS)
    metrics, df = evaluate_signals([RecordSignal("r0", "s0", "synth", FS, _sine(70.0, n), _sine(70.0, n))],
                                   EvalConfig(window_s=10.0, n_boot=0))
    assert "true_mae_bpm" not in metrics and df["hr_true"].isna().all()
