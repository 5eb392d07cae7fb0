"""benchmark.losses: per-sample Pearson, spectral power at bpm bins, frequency CE and DLDL KL.

Reference values are computed independently (scipy / numpy FFT / a literal transcription of the
toolbox formula), not with the functions under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from benchmark import losses as L
from benchmark.signal import hr_spectrum


def _sine(bpm: float, n: int, fs: float, phase: float = 0.0) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / fs
    return torch.sin(2 * math.pi * bpm / 60.0 * t + phase)


# -- negative Pearson ------------------------------------------------------------------------------
def test_neg_pearson_matches_scipy_per_row():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 64)), rng.normal(size=(5, 64))
    b[:, :] += 0.7 * a                                  # some correlation, different per row
    want = np.mean([1 - scipy.stats.pearsonr(a[i], b[i])[0] for i in range(5)])
    got = L.neg_pearson(torch.tensor(a), torch.tensor(b))
    assert float(got) == pytest.approx(want, abs=1e-9)


def test_neg_pearson_is_along_time_not_batch():
    x, y = _sine(72, 90, 30.0), _sine(101, 90, 30.0, phase=1.0)
    # Each row is an increasing affine map of its target: the per-sample loss is exactly 0.
    target = torch.stack([x, y])
    pred = torch.stack([3 * x + 5, 0.5 * y - 2])
    assert float(L.neg_pearson(pred, target)) == pytest.approx(0.0, abs=1e-9)
    # ... and an anti-correlated row costs 2: mean (0 + 2) / 2.
    assert float(L.neg_pearson(torch.stack([x, -y]), target)) == pytest.approx(1.0, abs=1e-9)
    # The toolbox's batch-axis variant (correlation across the rows at each time index) is far
    # from 0 on the first input, so a regression to that bug fails this test.
    pc, tc = pred - pred.mean(0), target - target.mean(0)
    batch_axis = 1 - F.cosine_similarity(pc, tc, dim=0).mean()
    assert float(batch_axis) > 0.2


def test_neg_pearson_constant_signal_is_finite_with_finite_gradient():
    pred = torch.ones(2, 50, requires_grad=True)
    target = torch.stack([_sine(60, 50, 25.0).float(), torch.zeros(50)])
    loss = L.neg_pearson(pred, target)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(1.0)
    assert torch.isfinite(pred.grad).all()


def test_neg_pearson_rejects_bad_shapes():
    with pytest.raises(ValueError, match="target shape"):
        L.neg_pearson(torch.zeros(2, 10), torch.zeros(2, 11))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        L.neg_pearson(torch.zeros(10), torch.zeros(10))


# -- spectral power --------------------------------------------------------------------------------
def test_spectral_power_equals_windowed_fft_at_integer_bins():
    rng = np.random.default_rng(1)
    n, fs = 150, 30.0                    # DFT bin spacing 0.2 Hz = 12 bpm
    x = rng.normal(size=(3, n))
    bpm = torch.tensor([48.0, 60.0, 72.0, 120.0, 168.0], dtype=torch.float64)
    k = (bpm.numpy() / 60.0 / (fs / n)).round().astype(int)
    want = np.abs(np.fft.fft(x * np.hanning(n), axis=1)[:, k]) ** 2
    got = L.spectral_power(torch.tensor(x), fs, bpm)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)


def test_spectral_power_per_sample_fs():
    x = torch.stack([_sine(70, 120, 30.0), _sine(70, 120, 20.0)])
    bpm = L.bpm_grid((40, 180)).double()
    both = L.spectral_power(x, torch.tensor([30.0, 20.0], dtype=torch.float64), bpm)
    torch.testing.assert_close(both[0], L.spectral_power(x[:1], 30.0, bpm)[0])
    torch.testing.assert_close(both[1], L.spectral_power(x[1:], 20.0, bpm)[0])
    assert [int(bpm[i]) for i in both.argmax(dim=1)] == [70, 70]


def test_spectral_power_is_differentiable():
    x = torch.randn(2, 24, dtype=torch.float64, requires_grad=True)
    bpm = torch.tensor([50.0, 77.5, 130.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: L.spectral_power(v, 24.0, bpm), (x,))


def test_spectral_power_rejects_bad_fs():
    with pytest.raises(ValueError, match="sampling rate"):
        L.spectral_power(torch.zeros(1, 10), -1.0, L.bpm_grid())
    with pytest.raises(ValueError, match=r"\(B,\) tensor"):
        L.spectral_power(torch.zeros(2, 10), torch.tensor([30.0, 30.0, 30.0]), L.bpm_grid())


# -- HR ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fs", [20.0, 25.0, 30.0])
def test_hr_from_spectrum_agrees_with_numpy_evaluation(fs):
    rng = np.random.default_rng(int(fs))
    n = 300
    bpms = [55.0, 83.0, 131.0]
    x = np.stack([_sine(b, n, fs, phase=rng.uniform(0, 6)).numpy() + 0.3 * rng.normal(size=n) for b in bpms])
    got = L.hr_from_spectrum(torch.tensor(x), fs).numpy()
    want = np.array([hr_spectrum(row, fs) for row in x])       # scipy periodogram, band 45–150 bpm
    np.testing.assert_allclose(got, want, atol=0.6)
    np.testing.assert_allclose(got, bpms, atol=1.5)


# -- frequency cross-entropy ----------------------------------------------------------------------
def test_freq_ce_is_minus_log_normalised_power_at_target_bin():
    x = torch.randn(3, 160, dtype=torch.float64)
    hr = torch.tensor([50.2, 90.7, 149.4], dtype=torch.float64)
    p = L.spectral_power(x, 30.0, L.bpm_grid((45, 150)).double())
    p_hat = p / p.sum(1, keepdim=True)
    idx = torch.round(hr - 45).long()                          # nearest 1-bpm bin
    want = -torch.log(p_hat[torch.arange(3), idx]).mean()
    torch.testing.assert_close(L.freq_ce(x, hr, 30.0), want, rtol=1e-6, atol=1e-8)


def test_freq_ce_toolbox_quirk_reproduces_reference_formula():
    # Reference (TorchLossComputer): F.cross_entropy(P/ΣP, trunc(HR − lo)) per sample, then averaged.
    x = torch.randn(2, 128, dtype=torch.float64)
    hr = torch.tensor([72.9, 101.2], dtype=torch.float64)
    bpm = torch.arange(40, 180, dtype=torch.float64)
    want = []
    for i in range(2):
        ca = L.spectral_power(x[i : i + 1], 25.0, bpm)
        ca = ca / ca.sum()
        want.append(F.cross_entropy(ca, (hr[i] - 40).view(1).long()))
    got = L.freq_ce(x, hr, 25.0, (40, 180), toolbox_quirk=True)
    torch.testing.assert_close(got, torch.stack(want).mean())


def test_freq_ce_separates_right_from_wrong_hr_far_better_than_the_quirk():
    x = _sine(90, 160, 30.0)[None]
    right, wrong = torch.tensor([90.0]), torch.tensor([60.0])
    contrast = L.freq_ce(x, wrong, 30.0) - L.freq_ce(x, right, 30.0)
    quirk = L.freq_ce(x, wrong, 30.0, toolbox_quirk=True) - L.freq_ce(x, right, 30.0, toolbox_quirk=True)
    assert float(contrast) > 5.0
    assert 0 < float(quirk) < 0.1


def test_freq_ce_signal_target_and_out_of_band_target():
    x = torch.randn(2, 160, dtype=torch.float64)
    label = torch.stack([_sine(66, 160, 30.0), _sine(118, 160, 30.0)])
    by_signal = L.freq_ce(x, label, 30.0)
    by_hr = L.freq_ce(x, L.hr_from_spectrum(label, 30.0, (30, 240)), 30.0)
    torch.testing.assert_close(by_signal, by_hr)
    # A target outside the bins is clamped to the edge bin (finite, no index error).
    edge = L.freq_ce(x, torch.tensor([20.0, 300.0]), 30.0)
    clamped = L.freq_ce(x, torch.tensor([45.0, 149.0]), 30.0)
    torch.testing.assert_close(edge, clamped)


def test_freq_ce_gradient_is_finite():
    x = torch.randn(2, 96, requires_grad=True)
    L.freq_ce(x, torch.tensor([70.0, 110.0]), torch.tensor([30.0, 24.0])).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# -- DLDL -------------------------------------------------------------------------------------------
def test_label_distribution_normalised_and_quirk_matches_reference_sampling():
    bpm = L.bpm_grid((40, 180)).double()
    q = L.label_distribution(torch.tensor([81.6], dtype=torch.float64), bpm, 1.0)
    assert float(q.sum()) == pytest.approx(1.0)
    assert int(bpm[q.argmax()]) == 82
    # Toolbox: normal pdf at int(HR) for integer bins, clipped at 1e-15.
    quirk = L.label_distribution(torch.tensor([81.6], dtype=torch.float64), bpm, 1.0, toolbox_quirk=True)[0]
    ref = [max(math.exp(-((i - 81) ** 2) / 2) / math.sqrt(2 * math.pi), 1e-15) for i in range(40, 180)]
    np.testing.assert_allclose(quirk.numpy(), ref, rtol=1e-12)


def test_dldl_kl_quirk_matches_reference_kldiv():
    x = torch.randn(2, 160, dtype=torch.float64)
    hr = torch.tensor([75.3, 122.8], dtype=torch.float64)
    bpm = torch.arange(40, 180, dtype=torch.float64)
    want = []
    for i in range(2):
        q = L.label_distribution(hr[i : i + 1], bpm, 1.0, toolbox_quirk=True)
        ca = L.spectral_power(x[i : i + 1], 30.0, bpm)
        want.append(torch.nn.KLDivLoss(reduction="sum")(F.log_softmax(ca / ca.sum(), dim=-1), q))
    got = L.dldl_kl(x, hr, 30.0, (40, 180), sigma=1.0, toolbox_quirk=True)
    torch.testing.assert_close(got, torch.stack(want).mean())


def test_dldl_kl_is_nonnegative_and_prefers_the_right_hr():
    x = _sine(100, 160, 30.0)[None]
    right = L.dldl_kl(x, torch.tensor([100.0]), 30.0)
    wrong = L.dldl_kl(x, torch.tensor([65.0]), 30.0)
    assert 0 <= float(right) < float(wrong)
