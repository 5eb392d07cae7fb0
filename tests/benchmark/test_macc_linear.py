"""MACC over linear lags (issue 17: a circular-lag version passed every earlier test).

The reference is the definition written out: for every lag k in [−max_lag, max_lag], the normalised
correlation of the overlapping parts of the two (globally de-meaned) signals, and the largest
absolute value. With noise and its delayed copy, a circular correlation would wrap the copy's head
around to its tail and fall well short of the linear value.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.signal import macc


def _macc_by_definition(pred: np.ndarray, ref: np.ndarray, max_lag: int) -> float:
    a, b = pred - pred.mean(), ref - ref.mean()
    n = len(a)
    best = 0.0
    for k in range(-max_lag, max_lag + 1):
        x, y = (a[k:], b[: n - k]) if k >= 0 else (a[: n + k], b[-k:])
        best = max(best, abs(np.dot(x, y)) / np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return min(best, 1.0)


@pytest.mark.parametrize("delay", [-37, -5, 0, 12, 60])
def test_macc_equals_its_definition_on_noise_and_a_delayed_copy(delay):
    rng = np.random.default_rng(abs(delay))
    n = 300
    ref = rng.normal(size=n)
    pred = np.roll(ref, delay)
    head = slice(0, delay) if delay >= 0 else slice(n + delay, n)
    pred[head] = rng.normal(size=abs(delay))  # linear delay: the wrapped part is new noise, not ref's tail
    pred = 2.5 * pred + 0.1 * rng.normal(size=n) + 4.0
    got = macc(pred, ref, max_lag=n // 2)
    assert got == pytest.approx(_macc_by_definition(pred, ref, n // 2), abs=1e-9)
    if delay:
        a, b = pred - pred.mean(), ref - ref.mean()
        circular = abs(np.dot(np.roll(a, -delay), b)) / np.sqrt(np.dot(a, a) * np.dot(b, b))
        assert got > circular + 0.02 * abs(delay) / 60  # the wrap-around costs |delay|/n of the overlap
