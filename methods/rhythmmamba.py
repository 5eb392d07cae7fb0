"""RhythmMamba (Zou, Guo et al., 2024): fusion stem, 24 multi-temporal Mamba blocks with a
frequency-domain FFN, nearest-neighbour temporal upsampling.

Re-implemented from zizheng-guo/RhythmMamba ``neural_methods/model/RhythmMamba.py`` and
``neural_methods/trainer/RhythmMambaTrainer.py`` (facts in ``shared/reference/models.md`` §9).
Module names follow the release, so its ``.pth`` files load (``module.`` prefix stripped).
Parameters at [1, 3, 160, 128, 128]: **4,922,125** (24 × 86,592 in the Mamba layers; 1,760,256 of
the FFN's r/i matrices are dead — only their diagonals are used — and are kept for fidelity).

Kept from the release on purpose: the unidirectional official Mamba (d_state 48, d_conv 4,
expand 2); the multi-temporal parallelisation (4 shifted copies whose tails keep their original
tokens, then per-segment averaging); the post-norm LN₁ on the Mamba output; ``einsum('bnc,cc->bnc')``
using only the diagonals of r and i; the real part kept after the inverse FFT; the init
(``segm_init_weights``, then the GPT-2 rescale of ``out_proj.weight`` by 1/√depth, which leaves
``dt_proj.bias`` at 0); the drop-path schedule ``[0] + linspace(0, 0.1, depth)`` indexed 0…depth−1.
Changed: the model takes our batch layout (B, C, T, H, W) and permutes to the release's
(B, T, C, H, W) inside; the loss runs on any device (the release hard-codes ``.cuda()``).
Not reproduced here: the trainer's data augmentation (AUG, with its batch-overwrite bug) — a data
pipeline concern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import signal as sig
from benchmark.losses import freq_ce, neg_pearson
from benchmark.method import InputSpec, MethodConfigError, NeuralMethod
from benchmark.registry import register_method
from lq_rppg.mamba import BACKENDS, Backend, Mamba
from lq_rppg.model import FusionStem, attention_mask, check_spatial, segm_init_weights


class DropPath(nn.Module):
    """Per-sample stochastic depth (timm ``DropPath`` semantics, scale by 1/keep; timm is not a dependency)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class FrequencyDomainFFN(nn.Module):
    """``Frequencydomain_FFN``: 1×1 conv up, channel-wise complex gain in the FFT domain, 1×1 conv down.

    r and i are (hidden, hidden) parameters as in the release, but only their diagonals act
    (the release's ``einsum('bnc,cc->bnc')``), written here as ``diagonal(r) * x``.
    """

    def __init__(self, dim: int, mlp_ratio: int) -> None:
        super().__init__()
        hidden = dim * mlp_ratio
        self.r = nn.Parameter(0.02 * torch.randn(hidden, hidden))
        self.i = nn.Parameter(0.02 * torch.randn(hidden, hidden))
        self.rb = nn.Parameter(0.02 * torch.randn(hidden))
        self.ib = nn.Parameter(0.02 * torch.randn(hidden))
        self.fc1 = nn.Sequential(nn.Conv1d(dim, hidden, 1, bias=False), nn.BatchNorm1d(hidden), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Conv1d(hidden, dim, 1, bias=False), nn.BatchNorm1d(dim))

    def forward(self, x: Tensor) -> Tensor:  # (B, N, C)
        x = self.fc1(x.transpose(1, 2)).transpose(1, 2)  # (B, N, hidden)
        xf = torch.fft.fft(x, dim=1, norm="ortho")
        r, i = torch.diagonal(self.r), torch.diagonal(self.i)
        real = F.relu(xf.real * r - xf.imag * i + self.rb)
        imag = F.relu(xf.imag * r + xf.real * i + self.ib)
        x = torch.fft.ifft(torch.complex(real, imag), dim=1, norm="ortho").real
        return self.fc2(x.transpose(1, 2)).transpose(1, 2)


class MambaLayer(nn.Module):
    """LayerNorm → unidirectional Mamba (d_state 48, d_conv 4, expand 2)."""

    def __init__(self, dim: int, d_state: int = 48, d_conv: int = 4, expand: int = 2, backend: Backend = "auto"):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mamba = Mamba(dim, d_state=d_state, d_conv=d_conv, expand=expand, bimamba=False, backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        return self.mamba(self.norm(x))


class BlockMamba(nn.Module):
    """``Block_mamba``: multi-temporal Mamba (post-norm residual) then the frequency-domain FFN."""

    segments = 4  # 2 ** (path − 1) with path = 3 in the release

    def __init__(self, dim: int, mlp_ratio: int, drop_path: float = 0.0, d_state: int = 48, backend: Backend = "auto"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = MambaLayer(dim, d_state=d_state, backend=backend)
        self.mlp = FrequencyDomainFFN(dim, mlp_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def multi_temporal(self, x: Tensor) -> Tensor:
        """Run the Mamba layer on S shifted copies and average each segment over the scans covering it."""
        b, length, _ = x.shape
        s = self.segments
        tt = length // s
        copies = [x]
        for i in range(1, s):  # copy i starts i·tt tokens later; its tail keeps the original tokens
            copies.append(torch.cat([x[:, i * tt:], x[:, length - i * tt:]], dim=1))
        y = self.attn(torch.cat(copies, dim=0)).split(b, dim=0)  # S × (B, L, C)
        pieces = [y[0][:, :tt]]
        for i in range(1, s):
            seg = y[0][:, i * tt:(i + 1) * tt]
            for j in range(i):  # copy j+1 holds original segment i at position i − j − 1
                seg = seg + y[j + 1][:, (i - j - 1) * tt:(i - j) * tt]
            pieces.append(seg / (i + 1))
        pieces.append(y[0][:, s * tt:])  # tokens beyond S·tt (L not divisible by S) pass through
        return torch.cat(pieces, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.norm1(self.multi_temporal(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _gpt2_rescale(module: nn.Module, n_layer: int) -> None:
    """The release's ``_init_weights`` (Mamba's GPT-2-style scheme) applied to one module."""
    if isinstance(module, nn.Linear) and module.bias is not None and not getattr(module.bias, "_no_reinit", False):
        nn.init.zeros_(module.bias)
    for name, p in module.named_parameters():
        if name in ("out_proj.weight", "fc2.weight"):
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))
            with torch.no_grad():
                p /= math.sqrt(n_layer)


class RhythmMambaNet(nn.Module):
    """RhythmMamba network: frames (B, 3, T, H, W) with T even, H, W multiples of 8 → rPPG (B, T)."""

    def __init__(self, depth: int = 24, embed_dim: int = 96, mlp_ratio: int = 2, drop_path_rate: float = 0.1,
                 d_state: int = 48, backend: Backend = "auto") -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.Fusion_Stem = FusionStem(dim=embed_dim // 4)
        self.stem3 = nn.Sequential(
            nn.Conv3d(embed_dim // 4, embed_dim, kernel_size=(2, 5, 5), stride=(2, 1, 1), padding=(0, 2, 2)),
            nn.BatchNorm3d(embed_dim),
        )
        dpr = [0.0] + torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            BlockMamba(embed_dim, mlp_ratio, drop_path=dpr[i], d_state=d_state, backend=backend) for i in range(depth)
        )
        self.upsample = nn.Upsample(scale_factor=2)
        self.ConvBlockLast = nn.Conv1d(embed_dim, 1, kernel_size=1)
        self.apply(segm_init_weights)
        for m in self.modules():
            _gpt2_rescale(m, depth)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"RhythmMamba expects frames (B, 3, T, H, W), got {tuple(x.shape)}")
        b, _, t, h, w = x.shape
        if t % 2 or t < 8:
            raise ValueError(f"RhythmMamba needs an even clip length ≥ 8 (temporal stride 2, 4 segments), got {t}")
        check_spatial(h, w, "RhythmMamba")
        x = self.Fusion_Stem(x.permute(0, 2, 1, 3, 4))  # (B·T, C/4, H/8, W/8)
        x = x.view(b, t, self.embed_dim // 4, h // 8, w // 8).permute(0, 2, 1, 3, 4)
        x = self.stem3(x)  # (B, C, T/2, H/8, W/8)
        x = x * attention_mask(x)
        x = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T/2, C)
        for blk in self.blocks:
            x = blk(x)
        x = self.upsample(x.transpose(1, 2))  # (B, C, T) nearest
        return self.ConvBlockLast(x).squeeze(1)


def label_hr_bpm(label: np.ndarray, fs: float) -> float:
    """HR of a label chunk as RhythmMamba's ``calculate_hr``: detrend λ=100 → Butterworth order 1
    0.75–2.5 Hz zero-phase → Welch (nperseg = min(N−1, 256), nfft = 1e5/fs) peak strictly inside 45–150 bpm."""
    x = sig.bandpass(sig.detrend(np.asarray(label, dtype=np.float64), 100.0), fs, (0.75, 2.5), 1)
    f, p = scipy.signal.welch(x, fs, nperseg=min(len(x) - 1, 256), nfft=max(int(1e5 / fs), len(x)))
    band = (f > 45 / 60) & (f < 150 / 60)
    return float(f[band][np.argmax(p[band])] * 60)


def rhythmmamba_loss(pred: Tensor, label: Tensor, fps: Tensor | float, *, toolbox_quirk: bool = True) -> Tensor:
    """RhythmMamba ``Hybrid_Loss`` averaged over the batch.

    Per sample: the prediction is z-scored (unbiased std); L = 0.2·(1 − ρ) + 1.0·CE(P̂, ⌊HR − 45⌋)
    over 45…149 bpm, with HR from :func:`label_hr_bpm` and, with ``toolbox_quirk`` (release), a
    softmax over the normalised power P̂. ρ is the shared ``neg_pearson`` (finite ε): where the
    release gets NaN (a constant label) and drops the term, this gives a constant 0.2 with zero
    gradient — the same training signal.
    """
    b = pred.shape[0]
    pred = (pred - pred.mean(-1, keepdim=True)) / pred.std(-1, keepdim=True)
    fs = torch.as_tensor(fps, dtype=torch.float32).detach().reshape(-1)
    if fs.numel() == 1:
        fs = fs.expand(b)
    if fs.numel() != b:
        raise ValueError(f"rhythmmamba loss: {fs.numel()} fps values for a batch of {b}")
    lab = label.detach().cpu().double().numpy()
    hr = torch.tensor([label_hr_bpm(lab[i], float(fs[i])) for i in range(b)], device=pred.device)
    fs = fs.to(pred.device)
    ce = freq_ce(pred, hr, fs, (45.0, 150.0), toolbox_quirk=toolbox_quirk)
    return 0.2 * neg_pearson(pred, label.to(pred)) + 1.0 * ce


@register_method("rhythmmamba")
class RhythmMamba(NeuralMethod):
    """RhythmMamba baseline; Standardized frames and labels, 160-frame chunks at 128×128."""

    input = InputSpec(frames=160, size=128, transforms=("standardized",), label="standardized")
    # RM configs (*RHYTHMMAMBA.yaml): AdamW lr 3e-4, wd 0, OneCycleLR per batch, 30 epochs, batch 16.
    paper_recipe = {"optimizer": "adamw", "lr": 3e-4, "weight_decay": 0.0, "epochs": 30, "batch_size": 16,
                    "scheduler": "onecycle"}
    #: CPU-quick preset: 64-frame chunks (32 tokens after the stride-2 stem) at 32×32 and 3 epochs:
    #: its 24 selective scans run through mambapy's pure-PyTorch scan on CPU, the slowest part here.
    quick = {"frames": 64, "size": 32, "epochs": 3, "batch_size": 2}

    @dataclass
    class Config:
        frames: int | None = None
        size: int | None = None
        checkpoint: str | None = None
        depth: int = 24
        embed_dim: int = 96
        mlp_ratio: int = 2
        drop_path: float = 0.1
        d_state: int = 48
        backend: str = "auto"
        #: softmax over the normalised spectrum in the CE term, as the release (False: −log P̂)
        freq_quirk: bool = True

    def __init__(self, **cfg) -> None:
        super().__init__(**cfg)
        c = self.cfg
        if c.backend not in BACKENDS:
            raise MethodConfigError(f"rhythmmamba: backend must be one of {BACKENDS}, got {c.backend!r}")
        if c.embed_dim % 8:
            raise MethodConfigError(f"rhythmmamba: embed_dim must be a multiple of 8, got {c.embed_dim}")
        spec = self.input_spec()
        if spec.frames % 2 or spec.frames < 8:
            raise MethodConfigError(f"rhythmmamba: frames must be even and ≥ 8, got {spec.frames}")
        if spec.size % 8:
            raise MethodConfigError(f"rhythmmamba: size must be a multiple of 8, got {spec.size}")

    def build_model(self) -> nn.Module:
        c = self.cfg
        return RhythmMambaNet(c.depth, c.embed_dim, c.mlp_ratio, c.drop_path, c.d_state, c.backend)  # type: ignore[arg-type]

    def loss(self, out, batch, *, epoch: int = 0, num_epochs: int = 1):
        return rhythmmamba_loss(out, batch["label"], batch["fps"], toolbox_quirk=self.cfg.freq_quirk)

    def efficiency_extras(self) -> dict[str, float]:
        """thop-visible parameters and the scan MAC estimate at the reference shape (``lq_rppg.profile``)."""
        from lq_rppg.profile import efficiency_extras

        return efficiency_extras(self.inference_model(), self.example_shape())

    def signal(self, out):
        return (out - out.mean(-1, keepdim=True)) / out.std(-1, keepdim=True)
