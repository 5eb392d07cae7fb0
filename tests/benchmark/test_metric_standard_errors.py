"""Window-level standard errors against values computed by hand (issue 17: the SEs of RMSE and MAPE
were never checked, and ``pearson_r`` was only compared with the function it calls)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.metrics import hr_metrics, pearson_r, standard_errors

# errors e = pred − ref = (2, −2, 4, 0); |e| = (2, 2, 4, 0); e² = (4, 4, 16, 0); ref = (50, 100, 80, 100)
PRED = np.array([52.0, 98.0, 84.0, 100.0])
REF = np.array([50.0, 100.0, 80.0, 100.0])


def test_standard_errors_equal_hand_computed_values():
    se = standard_errors(PRED, REF)
    # |e|: mean 2, sample variance ((0)² + (0)² + (2)² + (−2)²)/3 = 8/3 → SE = √(8/3)/2
    assert se["mae"] == pytest.approx(math.sqrt(8 / 3) / 2, rel=1e-12)
    # e²: mean 6, sample variance (4 + 4 + 100 + 36)/3 = 48 → SE(MSE) = √48/2 = 2√3;
    # delta method SE(RMSE) = SE(MSE)/(2·RMSE) = 2√3/(2√6) = 1/√2
    assert se["rmse"] == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    # |e|/ref in %: (4, 2, 5, 0), mean 2.75, sample variance (1.5625 + 0.5625 + 5.0625 + 7.5625)/3 = 14.75/3
    assert se["mape"] == pytest.approx(math.sqrt(14.75 / 3) / 2, rel=1e-12)
    r = pearson_r(PRED, REF)
    assert se["pearson"] == pytest.approx(math.sqrt((1 - r * r) / 2), rel=1e-12)


def test_pearson_r_equals_its_definition():
    # pred − mean(pred) = (−31.5, 14.5, 0.5, 16.5); ref − mean(ref) = (−32.5, 17.5, −2.5, 17.5)
    num = 31.5 * 32.5 + 14.5 * 17.5 - 0.5 * 2.5 + 16.5 * 17.5
    den = math.sqrt((31.5**2 + 14.5**2 + 0.5**2 + 16.5**2) * (32.5**2 + 17.5**2 + 2.5**2 + 17.5**2))
    assert pearson_r(PRED, REF) == pytest.approx(num / den, rel=1e-12)


def test_hr_metrics_reports_those_values():
    out = hr_metrics(PRED, REF, n_boot=0)
    assert (out["mae_bpm"], out["rmse_bpm"], out["mape"]) == pytest.approx((2.0, math.sqrt(6.0), 2.75))
    assert out["rmse_bpm_se"] == pytest.approx(1 / math.sqrt(2)) and out["mape_se"] == pytest.approx(math.sqrt(14.75 / 3) / 2)
