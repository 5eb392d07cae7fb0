"""Differentiable training losses shared by the neural methods (PyTorch).

Everything here works on batches of 1-D signals ``(B, T)`` and takes the sampling rate explicitly
(a float, or a ``(B,)`` tensor when the clips of one batch come from videos with different fps).
The definitions follow ``shared/reference/models.md`` §3, with two known toolbox problems fixed
and kept available behind a flag:

* **Negative Pearson** is computed *per sample along time* (the PhysNet original and the
  toolbox's ``PhysNetNegPearsonLoss``). The toolbox's other ``NegPearsonLoss`` correlates along
  the batch axis — a bug — and is deliberately not reproduced. A small ``eps`` keeps the loss and
  its gradient finite for a constant signal (where the reference divides 0 by 0 and returns NaN).
* **Frequency cross-entropy / DLDL KL** (PhysFormer, RhythmMamba, LQ-rPPG ``TorchLossComputer``):
  all three repositories normalise the band power to a distribution P̂ = P / ΣP and then apply
  *another* softmax (inside ``F.cross_entropy`` / ``log_softmax``) to P̂, whose entries lie in
  [0, 1]; the loss then stays near log(#bins) and its gradient is weak. By default we use P̂ itself
  as the predicted distribution (CE = −log P̂[i*], KL(q ‖ P̂)); ``toolbox_quirk=True`` reproduces
  the softmax-of-P̂ behaviour (and the toolbox's truncation of the target HR to a bin).

Hand-written rather than taken from a library: torch has no "power at arbitrary (non-integer)
DFT frequencies" primitive, and evaluating the windowed DFT directly at the bpm grid is what the
references do (a matrix product: K × T per sample, cheap for rPPG chunk lengths).

>>> import math, torch
>>> fs = 30.0
>>> t = torch.arange(300) / fs
>>> x = torch.sin(2 * math.pi * 1.2 * t)[None]          # 72 bpm
>>> round(float(hr_from_spectrum(x, fs)[0]), 1)
72.0
>>> float(neg_pearson(x, x)) < 1e-6
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "neg_pearson",
    "bpm_grid",
    "spectral_power",
    "hr_from_spectrum",
    "freq_ce",
    "label_distribution",
    "dldl_kl",
]

#: Default HR band (bpm) for the frequency losses: RhythmMamba / LQ-rPPG bins 45…149.
DEFAULT_BPM_RANGE = (45.0, 150.0)


def _full(x: Tensor) -> Tensor:
    """Half / bfloat16 (e.g. a model output under autocast) → float32: sums and phases need it."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.dim() != 2:
        raise ValueError(f"{name}: pred must be (B, T), got shape {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"{name}: target shape {tuple(target.shape)} != pred shape {tuple(pred.shape)}")
    if pred.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 time samples, got {pred.shape[1]}")


def neg_pearson(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over the batch of ``1 − ρ_b``, ρ_b the Pearson correlation of row b along time.

    ρ = Σ x̃ỹ / sqrt((Σ x̃² + eps)(Σ ỹ² + eps)) with x̃, ỹ centred per row. ``eps`` sits inside the
    square root so that a constant row gives ρ = 0 (loss 1) with a finite gradient instead of NaN;
    for signals of unit-order amplitude its effect on ρ is < 1e-8 relative.

    >>> import torch
    >>> x = torch.tensor([[0.0, 1.0, 0.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    >>> [round(v, 4) for v in (float(neg_pearson(x[:1], x[:1])), float(neg_pearson(x[:1], -x[:1])))]
    [0.0, 2.0]
    >>> float(neg_pearson(x[1:], x[:1]))     # constant prediction: finite, ρ = 0
    1.0
    """
    _check_pair(pred, target, "neg_pearson")
    pred, target = _full(pred), _full(target).to(_full(pred).dtype)
    x = pred - pred.mean(dim=1, keepdim=True)
    y = target - target.mean(dim=1, keepdim=True)
    num = (x * y).sum(dim=1)
    den = torch.sqrt((x.pow(2).sum(dim=1) + eps) * (y.pow(2).sum(dim=1) + eps))
    return (1.0 - num / den).mean()


def bpm_grid(bpm_range: Sequence[float] = DEFAULT_BPM_RANGE, step: float = 1.0, *, device=None) -> Tensor:
    """``arange(lo, hi, step)`` in bpm, as the references build their bins (hi excluded).

    >>> bpm_grid((45, 150)).shape
    torch.Size([105])
    """
    lo, hi = float(bpm_range[0]), float(bpm_range[1])
    if not (0 < lo < hi) or step <= 0:
        raise ValueError(f"invalid bpm range {tuple(bpm_range)} / step {step}")
    return torch.arange(lo, hi, step, dtype=torch.float32, device=device)


def _fs_tensor(fs: float | Tensor, batch: int, like: Tensor) -> Tensor:
    """fs → (B, 1, 1) float tensor on ``like``'s device, validated > 0."""
    fs_t = torch.as_tensor(fs, dtype=like.dtype, device=like.device)
    if fs_t.dim() == 0:
        fs_t = fs_t.expand(batch)
    if fs_t.shape != (batch,):
        raise ValueError(f"fs must be a float or a (B,) tensor with B={batch}, got shape {tuple(fs_t.shape)}")
    if not bool(torch.all(torch.isfinite(fs_t) & (fs_t > 0))):
        raise ValueError(f"sampling rate must be finite and > 0, got {fs_t.tolist()}")
    return fs_t.view(batch, 1, 1)


def spectral_power(
    x: Tensor,
    fs: float | Tensor,
    bpm: Tensor,
    *,
    window: str | None = "hann",
    demean: bool = False,
) -> Tensor:
    """Power of ``x`` (B, T) at the frequencies ``bpm`` (K,) → (B, K); differentiable.

    P(b) = (Σ_n w_n x_n sin(2π f_b n / fs))² + (Σ_n w_n x_n cos(2π f_b n / fs))², f_b = b/60 Hz,
    w the symmetric Hann window (``numpy.hanning``), as ``TorchLossComputer.complex_absolute``:
    their DFT index k = f_b·T/fs is generally not an integer, which is the same as evaluating the
    DTFT at f_b. ``demean`` removes each row's mean first (the references do not).

    >>> import math, torch
    >>> t = torch.arange(160) / 30.0
    >>> p = spectral_power(torch.cos(2 * math.pi * 1.5 * t)[None], 30.0, bpm_grid((40, 180)))
    >>> int(p.argmax()) + 40
    90
    """
    if x.dim() != 2:
        raise ValueError(f"spectral_power: x must be (B, T), got shape {tuple(x.shape)}")
    if bpm.dim() != 1:
        raise ValueError(f"spectral_power: bpm must be (K,), got shape {tuple(bpm.shape)}")
    x = _full(x)
    batch, n = x.shape
    if demean:
        x = x - x.mean(dim=1, keepdim=True)
    if window == "hann":
        x = x * torch.hann_window(n, periodic=False, dtype=x.dtype, device=x.device)
    elif window is not None:
        raise ValueError(f"unknown window {window!r}; valid: 'hann', None")
    fs_t = _fs_tensor(fs, batch, x)                                   # (B, 1, 1)
    t = torch.arange(n, dtype=x.dtype, device=x.device).view(1, 1, n)
    freq = (bpm.to(dtype=x.dtype, device=x.device) / 60.0).view(1, -1, 1)
    phase = 2.0 * math.pi * freq * t / fs_t                           # (B, K, T)
    xs = x.unsqueeze(1)                                               # (B, 1, T)
    return (xs * torch.sin(phase)).sum(-1).pow(2) + (xs * torch.cos(phase)).sum(-1).pow(2)


@torch.no_grad()
def hr_from_spectrum(
    x: Tensor,
    fs: float | Tensor,
    bpm_range: Sequence[float] = DEFAULT_BPM_RANGE,
    *,
    resolution_bpm: float = 0.1,
) -> Tensor:
    """Heart rate (B,) in bpm: the peak of the Hann-windowed, de-meaned spectrum on a fine grid.

    With one segment this is what the references' ``scipy.signal.welch(nperseg=min(T−1, 256),
    nfft≈1e5/fs)`` returns for a chunk (Welch's default 'constant' detrend = de-meaning), without
    leaving torch. Not differentiable (arg-max).

    >>> import math, torch
    >>> t = torch.arange(160) / 25.0
    >>> x = torch.stack([torch.sin(2 * math.pi * 1.0 * t), torch.sin(2 * math.pi * 2.0 * t)])
    >>> [round(v) for v in hr_from_spectrum(x, 25.0).tolist()]
    [60, 120]
    """
    bpm = bpm_grid(bpm_range, resolution_bpm, device=x.device)
    p = spectral_power(x.detach().float(), fs, bpm, demean=True)
    return bpm[p.argmax(dim=1)]


def _target_hr(target: Tensor, fs: float | Tensor, batch: int) -> Tensor:
    """target: (B,) HR in bpm, or a (B, T) reference signal whose spectral peak is the HR."""
    if target.dim() == 1:
        if target.shape[0] != batch:
            raise ValueError(f"target HR must be (B,)=({batch},), got {tuple(target.shape)}")
        return target.detach().float()
    if target.dim() == 2 and target.shape[0] == batch:
        # The whole plausible band: the target may lie outside the loss bins; it is clamped later.
        return hr_from_spectrum(target, fs, (30.0, 240.0))
    raise ValueError(f"target must be (B,) HR in bpm or a (B, T) signal, got {tuple(target.shape)}")


def _bin_index(hr: Tensor, bpm: Tensor, *, truncate: bool) -> Tensor:
    step = float(bpm[1] - bpm[0]) if bpm.numel() > 1 else 1.0
    pos = (hr.to(bpm.device) - bpm[0]) / step
    idx = torch.floor(pos) if truncate else torch.round(pos)
    return idx.clamp(0, bpm.numel() - 1).long()


def _log_distribution(power: Tensor, toolbox_quirk: bool, eps: float = 1e-10) -> Tensor:
    """log of the predicted distribution over bins from band power (B, K)."""
    p_hat = power / (power.sum(dim=1, keepdim=True) + eps)
    if toolbox_quirk:
        return F.log_softmax(p_hat, dim=1)        # softmax of an already-normalised spectrum
    return torch.log(p_hat + eps)


def freq_ce(
    pred: Tensor,
    target: Tensor,
    fs: float | Tensor,
    bpm_range: Sequence[float] = DEFAULT_BPM_RANGE,
    *,
    toolbox_quirk: bool = False,
    power: Tensor | None = None,
) -> Tensor:
    """Frequency cross-entropy: −log P̂_pred[bin of the target HR], mean over the batch.

    ``pred`` (B, T); ``target`` either (B,) HR in bpm or a (B, T) reference signal (its HR is its
    spectral peak, :func:`hr_from_spectrum`). Bins are 1 bpm wide, ``arange(*bpm_range)``; a target
    outside them is clamped to the nearest edge bin. With ``toolbox_quirk`` the logits are the
    normalised power P̂ (so the softmax of P̂ is the prediction) and the target bin is the truncated
    HR − lo, exactly as the references. ``power``: ``spectral_power(pred, fs, bins)`` when the caller
    already has it on the same bins (PhysFormer's CE and KL share one spectrum per batch).

    >>> import math, torch
    >>> t = torch.arange(160) / 30.0
    >>> x = torch.sin(2 * math.pi * 1.5 * t)[None]                      # 90 bpm
    >>> good = freq_ce(x, torch.tensor([90.0]), 30.0)
    >>> bad = freq_ce(x, torch.tensor([60.0]), 30.0)
    >>> bool(good < 3.0 < bad)                # a 5 s chunk spreads power over ~±10 bins
    True
    >>> q_good = freq_ce(x, torch.tensor([90.0]), 30.0, toolbox_quirk=True)
    >>> q_bad = freq_ce(x, torch.tensor([60.0]), 30.0, toolbox_quirk=True)
    >>> round(float(q_bad - q_good), 2)      # the quirk: barely any contrast (≈ log 105 = 4.65 each)
    0.06
    """
    if pred.dim() != 2:
        raise ValueError(f"freq_ce: pred must be (B, T), got shape {tuple(pred.shape)}")
    bpm = bpm_grid(bpm_range, device=pred.device)
    hr = _target_hr(target, fs, pred.shape[0])
    idx = _bin_index(hr, bpm, truncate=toolbox_quirk)
    logp = _log_distribution(spectral_power(pred, fs, bpm) if power is None else power, toolbox_quirk)
    return F.nll_loss(logp, idx)


def label_distribution(
    hr: Tensor, bpm: Tensor, sigma: float = 1.0, *, toolbox_quirk: bool = False
) -> Tensor:
    """Gaussian label distribution over the bins (B, K) centred at ``hr`` (DLDL, Gao et al. 2017).

    Default: centred at the exact HR and normalised to sum 1. ``toolbox_quirk``: the toolbox /
    PhysFormer form — centred at the truncated integer HR, unnormalised pdf values clipped at 1e-15.

    >>> import torch
    >>> q = label_distribution(torch.tensor([72.3]), bpm_grid((40, 180)))
    >>> round(float(q.sum()), 6), int(q.argmax()) + 40
    (1.0, 72)
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    centre = torch.floor(hr) if toolbox_quirk else hr
    z = (bpm.view(1, -1) - centre.view(-1, 1).to(bpm)) / sigma
    q = torch.exp(-0.5 * z.pow(2)) / (math.sqrt(2 * math.pi) * sigma)
    if toolbox_quirk:
        return q.clamp_min(1e-15)
    return q / q.sum(dim=1, keepdim=True).clamp_min(1e-30)


def dldl_kl(
    pred: Tensor,
    target: Tensor,
    fs: float | Tensor,
    bpm_range: Sequence[float] = (40.0, 180.0),
    *,
    sigma: float = 1.0,
    toolbox_quirk: bool = False,
    power: Tensor | None = None,
) -> Tensor:
    """Label-distribution KL: Σ_b q_b (log q_b − log p_b), summed over bins, mean over the batch.

    p is the predicted spectral distribution of ``pred`` (B, T) over ``arange(*bpm_range)`` bpm,
    q the Gaussian :func:`label_distribution` around the target HR (``target`` as in
    :func:`freq_ce`, and ``power`` too). PhysFormer uses bins 40…179 and σ = 1.

    >>> import math, torch
    >>> t = torch.arange(160) / 30.0
    >>> x = torch.sin(2 * math.pi * 1.5 * t)[None]
    >>> bool(dldl_kl(x, torch.tensor([90.0]), 30.0) < dldl_kl(x, torch.tensor([120.0]), 30.0))
    True
    """
    if pred.dim() != 2:
        raise ValueError(f"dldl_kl: pred must be (B, T), got shape {tuple(pred.shape)}")
    bpm = bpm_grid(bpm_range, device=pred.device)
    hr = _target_hr(target, fs, pred.shape[0])
    q = label_distribution(hr, bpm, sigma, toolbox_quirk=toolbox_quirk)
    logp = _log_distribution(spectral_power(pred, fs, bpm) if power is None else power, toolbox_quirk)
    return (q * (torch.log(q.clamp_min(1e-30)) - logp)).sum(dim=1).mean()
