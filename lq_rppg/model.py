"""LQ-rPPG coarse-to-fine model (``C2F_model``) and the RhythmMamba stem it shares.

Re-implemented from the released ``neural_methods/model/LQC2F.py`` of junseong-lee-repo/LQC2F-rPPG
(layer table, init and names in ``shared/reference/models.md`` §10.3); the fusion stem and the
attention mask are RhythmMamba's (zizheng-guo/RhythmMamba ``neural_methods/model/RhythmMamba.py``,
§9), and ``methods/rhythmmamba.py`` imports them from here.

Data path, shapes for B clips of T frames at H×W (reference: T = 160, H = W = 128, C = 64)::

    frames (B, 3, T, H, W) ──Fusion_Stem (frame + 4 temporal differences, 2-D convs)──► (B·T, C/4, H/8, W/8)
      ──stem3 Conv3d k(3,5,5) s1 + BN──► (B, C, T, H/8, W/8) ──× sigmoid attention mask──► mean over H, W
      ──► tokens (B, T, C) + position embedding (1, T, C)
      stage k = 1…4:  u_k = BiMamba_k(input_k);  h_k = Conv1d_{C→1}(u_k)  (token head, (B, T))
                      s_k = Σ_j softmax_j(−|h_k − c_j^{(b_k)}|) c_j^{(b_k)}   (soft reconstruction, frozen codebook)
                      p_k = Conv1d_{1→C}(s_k);  input_{k+1} = u_k + Σ_{m≤k} p_m   (dense additive skip)
      predictor (3 × Conv1d k3 C→C, GELU between, then Conv1d k3 C→1) on input_5 ──► ŷ (B, T)
      signal = z-score_t( soft reconstruction of ŷ through the final (5-bit) codebook )

Parameters at the reference width: **405,453** (independent of T, H, W; the position embedding's
length is ``frames``). Without codebooks the soft reconstruction is skipped and ``p_k`` projects
``h_k`` directly — the path the release's cost script measures.

Deviation from the release, on purpose: the release keeps the codebooks as plain attributes, so
they are missing from the state dict and must be re-injected after every checkpoint load (a
documented pitfall). Here they are non-trainable *buffers* (``codebook_1…4``, ``codebook_final``,
``codebook_loaded``), so a saved C2F carries its codebooks; the parameter count is unchanged and a
released checkpoint loads with :meth:`C2FModel.load_reference_state_dict` (codebooks then come from
the released quantizers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lq_rppg.mamba import Backend, BiMambaBlock

#: Bit level of each of the four stages and of the final predictor in the paper's configuration.
DEFAULT_STAGE_BITS = (1, 2, 3, 4)
DEFAULT_FINAL_BITS = 5


class ChunkLengthError(ValueError):
    """A clip's length differs from the model's position-embedding length."""


# ---------------------------------------------------------------------------------------------
# initialisation (timm's trunc_normal_ / lecun_normal_, written with torch.nn.init: timm is not a
# dependency of this project)
# ---------------------------------------------------------------------------------------------
def lecun_normal_(w: Tensor) -> Tensor:
    """TF-style LeCun normal: truncated normal (±2σ) with variance 1/fan_in, as timm's ``lecun_normal_``."""
    fan_in = nn.init._calculate_fan_in_and_fan_out(w)[0]
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # std of a unit normal truncated at ±2
    return nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def segm_init_weights(m: nn.Module) -> None:
    """The init RhythmMamba and LQ-rPPG apply to every sub-module (``segm_init_weights``).

    Linear: trunc-normal(0.02), bias 0 (this also zeroes Mamba's ``dt_proj.bias``, so Δ starts at
    softplus(0) ≈ 0.69 — a quirk of both releases, kept); Conv2d: LeCun normal, bias 0;
    LayerNorm/GroupNorm/BatchNorm2d: weight 1, bias 0. Conv1d/Conv3d keep PyTorch's default.
    """
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        lecun_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# RhythmMamba stem
# ---------------------------------------------------------------------------------------------
def _stem_conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=7, stride=stride, padding=3),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2, stride=2),
    )


class FusionStem(nn.Module):
    """RhythmMamba's ``Fusion_Stem``: fuses each frame with its four neighbouring differences.

    (B, T, 3, H, W) → (B·T, dim, H/8, W/8). Edge frames are replicated to build x_{t−2}…x_{t+2}.
    Sub-module names (``stem11``, ``stem12``, ``stem21``, ``stem22``) match the releases.
    """

    def __init__(self, dim: int = 24, alpha: float = 0.5, beta: float = 0.5) -> None:
        super().__init__()
        self.stem11 = _stem_conv(3, dim // 2, 2)  # raw frame
        self.stem12 = _stem_conv(12, dim // 2, 2)  # 4 stacked differences
        self.stem21 = _stem_conv(dim // 2, dim, 1)
        self.stem22 = _stem_conv(dim // 2, dim, 1)
        self.alpha, self.beta = alpha, beta

    def forward(self, x: Tensor) -> Tensor:
        b, t, c, h, w = x.shape
        first, last = x[:, :1], x[:, -1:]
        x_m2 = torch.cat([first, first, x[:, : t - 2]], 1)
        x_m1 = torch.cat([first, x[:, : t - 1]], 1)
        x_p1 = torch.cat([x[:, 1:], last], 1)
        x_p2 = torch.cat([x[:, 2:], last, last], 1)
        diffs = torch.cat([x_m1 - x_m2, x - x_m1, x_p1 - x, x_p2 - x_p1], 2)  # (B, T, 12, H, W)
        x_diff = self.stem12(diffs.reshape(b * t, 4 * c, h, w))
        x_raw = self.stem11(x.reshape(b * t, c, h, w))
        path1 = self.stem21(self.alpha * x_raw + self.beta * x_diff)
        path2 = self.stem22(x_diff)
        return self.alpha * path1 + self.beta * path2


def attention_mask(x: Tensor) -> Tensor:
    """Sigmoid mask normalised per (channel, frame) over H×W to mean 0.5 (RhythmMamba ``Attention_mask``).

    x: (B, C, T, H, W) pre-activation → mask of the same shape; the caller multiplies it in.
    """
    m = torch.sigmoid(x)
    h, w = x.shape[3], x.shape[4]
    return m / m.sum(dim=(3, 4), keepdim=True) * (h * w * 0.5)


def check_spatial(h: int, w: int, name: str) -> None:
    if h % 8 or w % 8 or h < 8 or w < 8:
        raise ValueError(f"{name}: frame size {h}x{w} must be a positive multiple of 8 (the stem downsamples by 8)")


# ---------------------------------------------------------------------------------------------
# soft reconstruction against a frozen codebook
# ---------------------------------------------------------------------------------------------
def codebook_logits(h: Tensor, codebook: Tensor) -> Tensor:
    """Logits −|h − c_j| of scalar tokens h (...,) against a (K, 1) or (K,) codebook → (..., K)."""
    return -(h.unsqueeze(-1) - codebook.reshape(-1).to(h)).abs()


def soft_reconstruct(h: Tensor, codebook: Tensor) -> Tensor:
    """Σ_j softmax_j(−|h − c_j|) c_j with unit temperature (LQ-rPPG's distance-based soft reconstruction)."""
    p = F.softmax(codebook_logits(h, codebook), dim=-1)
    return (p * codebook.reshape(-1).to(h)).sum(-1)


def zscore(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-row (y − mean)/(std + eps) along the last axis with torch's unbiased std (the release's test path)."""
    return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps)


# ---------------------------------------------------------------------------------------------
# C2F model
# ---------------------------------------------------------------------------------------------
class RPPGPredictor(nn.Module):
    """``Q2FPhys_rPPG_predictor``: [Conv1d k3 + GELU] × 2 → Conv1d k3 → Conv1d_{C→1} k3; (B, T, C) → (B, T)."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.time_feature_extractor = nn.Sequential(
            nn.Conv1d(dim, dim, 3, padding=1), nn.GELU(),
            nn.Conv1d(dim, dim, 3, padding=1), nn.GELU(),
            nn.Conv1d(dim, dim, 3, padding=1),
        )
        self.last_conv = nn.Conv1d(dim, 1, 3, padding=1)
        self.apply(segm_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        return self.last_conv(self.time_feature_extractor(x.transpose(1, 2))).squeeze(1)


class C2FModel(nn.Module):
    """LQ-rPPG ``C2F_model``: RhythmMamba stem, four BiMamba stages with codebook heads, conv predictor.

    ``forward(frames (B, 3, T, H, W))`` returns a dict:

    * ``pred`` (B, T): the predictor output ŷ before soft reconstruction;
    * ``heads``: the four token-head outputs h_k, each (B, T);
    * ``stage_signal``: the soft reconstructions s_k (or h_k when no codebook is loaded), each (B, T);
    * ``signal`` (B, T): ŷ soft-reconstructed through the final codebook (if loaded), z-scored per clip.

    ``stage_bits``/``final_bits`` give the bit level b (K = 2^b codewords) of each codebook slot.

    >>> m = C2FModel(frames=160)
    >>> sum(p.numel() for p in m.parameters())
    405453
    """

    def __init__(
        self,
        frames: int = 160,
        dim: int = 64,
        d_state: int = 48,
        expand: int = 2,
        stage_bits: Sequence[int] = DEFAULT_STAGE_BITS,
        final_bits: int = DEFAULT_FINAL_BITS,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        if len(stage_bits) != 4:
            raise ValueError(f"C2F has 4 stages; got stage_bits={tuple(stage_bits)}")
        for b in (*stage_bits, final_bits):
            if not 1 <= int(b) <= 5:
                raise ValueError(f"bit level must be in 1–5, got {b}")
        self.frames, self.dim = int(frames), int(dim)
        self.stage_bits = tuple(int(b) for b in stage_bits)
        self.final_bits = int(final_bits)

        self.Fusion_Stem = FusionStem(dim=dim // 4)
        self.stem3 = nn.Sequential(
            nn.Conv3d(dim // 4, dim, kernel_size=(3, 5, 5), stride=1, padding=(1, 2, 2)),
            nn.BatchNorm3d(dim),
        )
        for k in range(1, 5):
            self.add_module(f"mamba_{k}", nn.Sequential(BiMambaBlock(dim, d_state, 4, expand, backend)))
        for k in range(1, 5):
            self.add_module(f"mamba{k}_token_head", nn.Conv1d(dim, 1, 1))
        for k in range(1, 5):
            self.add_module(f"mamba{k}_scalar_projection", nn.Conv1d(1, dim, 1))
        self.position_embedding = nn.Parameter(torch.zeros(1, self.frames, dim))
        self.rppg_predictor = RPPGPredictor(dim)
        for k, b in enumerate(self.stage_bits, start=1):
            self.register_buffer(f"codebook_{k}", torch.zeros(2**b, 1))
        self.register_buffer("codebook_final", torch.zeros(2**self.final_bits, 1))
        self.register_buffer("codebook_loaded", torch.zeros((), dtype=torch.bool))
        self.apply(segm_init_weights)

    # -- codebooks -----------------------------------------------------------------------------
    @property
    def has_codebooks(self) -> bool:
        return bool(self.codebook_loaded)

    def stage_codebooks(self) -> list[Tensor]:
        return [getattr(self, f"codebook_{k}") for k in range(1, 5)]

    @torch.no_grad()
    def load_codebooks(self, codebooks: dict[int, Tensor]) -> None:
        """Inject frozen codebooks, given as ``{bits: (K, 1) or (K,) tensor}``; every bit level in use is required."""
        need = sorted(set(self.stage_bits) | {self.final_bits})
        missing = [b for b in need if b not in codebooks]
        if missing:
            raise ValueError(f"load_codebooks: missing codebook(s) for bit level(s) {missing}; need {need}")
        for slot, b in [*((f"codebook_{k}", b) for k, b in enumerate(self.stage_bits, 1)), ("codebook_final", self.final_bits)]:
            cb = torch.as_tensor(codebooks[b]).detach().reshape(-1, 1).to(getattr(self, slot))
            if cb.shape[0] != 2**b:
                raise ValueError(f"load_codebooks: {b}-bit codebook must have {2**b} entries, got {cb.shape[0]}")
            getattr(self, slot).copy_(cb)
        self.codebook_loaded.fill_(True)

    @torch.no_grad()
    def clear_codebooks(self) -> None:
        for slot in [f"codebook_{k}" for k in range(1, 5)] + ["codebook_final"]:
            getattr(self, slot).zero_()
        self.codebook_loaded.fill_(False)

    def load_reference_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a released ``C2F_model`` state dict (no codebook buffers; ``module.`` prefixes allowed)."""
        state = {k.removeprefix("module."): v for k, v in state.items()}
        own = {k for k in self.state_dict() if not k.startswith("codebook_")}
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        if missing or unexpected:
            raise KeyError(f"not a C2F_model state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.load_state_dict(state, strict=False)

    # -- forward -------------------------------------------------------------------------------
    def tokens(self, x: Tensor) -> Tensor:
        """Stem: frames (B, 3, T, H, W) → tokens (B, T, C) including the position embedding."""
        if x.dim() != 5:
            raise ValueError(f"C2F expects frames (B, C, T, H, W), got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        if c != 3:
            raise ValueError(f"C2F expects 3 colour channels, got {c}")
        if t != self.frames:
            raise ChunkLengthError(
                f"C2F: clip length {t} differs from the position-embedding length {self.frames}; "
                f"set the method's `frames` to {t} or feed {self.frames}-frame chunks"
            )
        check_spatial(h, w, "C2F")
        x = self.Fusion_Stem(x.permute(0, 2, 1, 3, 4))  # (B·T, C/4, H/8, W/8)
        x = x.view(b, t, self.dim // 4, h // 8, w // 8).permute(0, 2, 1, 3, 4)  # (B, C/4, T, H/8, W/8)
        x = self.stem3(x)  # (B, C, T, H/8, W/8)
        x = x * attention_mask(x)
        x = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, C)
        return x + self.position_embedding

    def forward(self, x: Tensor) -> dict:
        tokens = self.tokens(x)
        use_cb = self.has_codebooks
        codebooks = self.stage_codebooks()
        heads, stage_signal, projections = [], [], []
        inp = tokens
        for k in range(1, 5):
            u = getattr(self, f"mamba_{k}")(inp)  # (B, T, C)
            h = getattr(self, f"mamba{k}_token_head")(u.transpose(1, 2)).squeeze(1)  # (B, T)
            s = soft_reconstruct(h, codebooks[k - 1]) if use_cb else h
            p = getattr(self, f"mamba{k}_scalar_projection")(s.unsqueeze(1)).transpose(1, 2)  # (B, T, C)
            projections.append(p)
            heads.append(h)
            stage_signal.append(s)
            inp = u + sum(projections)
        pred = self.rppg_predictor(inp)  # (B, T)
        final = soft_reconstruct(pred, self.codebook_final) if use_cb else pred
        return {"pred": pred, "heads": heads, "stage_signal": stage_signal, "final": final, "signal": zscore(final)}
