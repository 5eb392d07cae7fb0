"""Losses of LQ-rPPG: the batched hybrid reconstruction loss and the per-stage codebook loss.

Built on the shared :mod:`benchmark.losses` (``neg_pearson``, ``spectral_power``, ``freq_ce``).
Definitions follow ``shared/reference/models.md`` §3 and §10.4 (LQ ``TorchLossComputer.py``,
``Hybrid_Loss_Batched``):

* hybrid = 0.2·mean_b(1 − ρ_b) + 1.0·CE over the integer bpm bins 45…149, where the CE target bin
  is the argmax of the *target's* own Hann-windowed power at those bins (no detrend or filter),
  and, with ``toolbox_quirk`` (default, as the release), the CE is a softmax over the already
  normalised power P̂ — the reference quirk that keeps the loss near log 105 with a weak gradient;
  ``toolbox_quirk=False`` uses −log P̂ instead (the shared helper's fixed form);
* the Pearson term uses the shared per-row ``neg_pearson`` (ε = 1e-8 inside the square root; the
  release puts ε inside and outside — a difference below 1e-8 relative);
* the sampling rate may differ per sample (``fs`` a float or a (B,) tensor); the release takes one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.losses import DEFAULT_BPM_RANGE, bpm_grid, freq_ce, neg_pearson, spectral_power
from lq_rppg.model import codebook_logits

__all__ = ["BPM_RANGE", "codebook_ce", "hybrid_loss_batched", "neg_pearson", "quantizer_objective", "target_bin_hr"]

#: bpm bins of the spectral losses (45…149, as ``torch.arange(45, 150)`` in the references).
BPM_RANGE = DEFAULT_BPM_RANGE


@torch.no_grad()
def target_bin_hr(target: Tensor, fs: float | Tensor) -> Tensor:
    """HR (B,) in bpm of the integer bin (45…149) holding the most power of each target row.

    >>> import torch
    >>> t = torch.arange(160) / 30.0
    >>> target_bin_hr(torch.sin(2 * torch.pi * 1.2 * t)[None], 30.0).tolist()
    [72.0]
    """
    bpm = bpm_grid(BPM_RANGE, device=target.device)
    return bpm[spectral_power(target.float(), fs, bpm).argmax(dim=1)]


def hybrid_loss_batched(
    pred: Tensor,
    target: Tensor,
    fs: float | Tensor,
    pearson_weight: float = 0.2,
    spectral_weight: float = 1.0,
    *,
    toolbox_quirk: bool = True,
) -> Tensor:
    """LQ ``Hybrid_Loss_Batched``: w_p·mean(1 − ρ) + w_s·CE(pred spectrum, target's peak bin).

    >>> import torch
    >>> t = torch.arange(160) / 30.0
    >>> y = torch.sin(2 * torch.pi * 1.2 * t)[None]
    >>> other = torch.sin(2 * torch.pi * 2.0 * t)[None]
    >>> bool(hybrid_loss_batched(y, y, 30.0) < hybrid_loss_batched(other, y, 30.0))
    True
    """
    hr = target_bin_hr(target, fs)
    ce = freq_ce(pred, hr, fs, BPM_RANGE, toolbox_quirk=toolbox_quirk)
    return pearson_weight * neg_pearson(pred, target.to(pred)) + spectral_weight * ce


def codebook_ce(h: Tensor, codebook: Tensor, codes: Tensor) -> Tensor:
    """Classification loss of a stage: CE of logits −|h − c_k| (B, T, K) against code indices (B, T).

    >>> import torch
    >>> cb = torch.tensor([-1.0, 1.0])
    >>> good = codebook_ce(torch.tensor([[-3.0, 3.0]]), cb, torch.tensor([[0, 1]]))
    >>> bad = codebook_ce(torch.tensor([[3.0, -3.0]]), cb, torch.tensor([[0, 1]]))
    >>> bool(good < 0.2 < 2.0 < bad)
    True
    """
    logits = codebook_logits(h, codebook)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1).long())


def quantizer_objective(outputs, y: Tensor, bits, *, rec_weight: float = 1.0, commit_weight: float = 1.0) -> dict[str, Tensor]:
    """Phase-1 loss of the label quantizers: Σ_b rec_weight·NegPearson(q̃_b, y) + commit_weight·commitment_b.

    ``outputs`` holds each quantizer's ``(commitment, quantized, indices)`` for the label ``y``
    (B, T), in the order of ``bits``. Returns ``{"loss": total, "lq<b>_rec": …, "lq<b>_commit": …}``
    (the per-level terms detached, for logging). The release's LQ_Alpha = LQ_Beta = 1.
    """
    terms: dict[str, Tensor] = {}
    total = y.new_zeros(())
    for b, (c_loss, q, _idx) in zip(bits, outputs):
        rec = neg_pearson(q, y)
        commit = c_loss.sum()
        terms[f"lq{b}_rec"], terms[f"lq{b}_commit"] = rec.detach(), commit.detach()
        total = total + rec_weight * rec + commit_weight * commit
    return {"loss": total, **terms}
