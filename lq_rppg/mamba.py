"""Mamba selective-state-space layer with the official parameter set, runnable on CPU.

RhythmMamba and LQ-rPPG both build on ``mamba_ssm.modules.mamba_simple.Mamba`` (CUDA only). This
module re-implements that layer so the benchmark trains and tests anywhere:

* **Parameters** are named and shaped exactly as in ``mamba_ssm`` (``in_proj``, ``conv1d``,
  ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``) and, with ``bimamba=True``, as in the
  VideoMamba fork that LQ-rPPG's ``Mamba(..., bimamba=True)`` call matches (extra ``A_b_log``,
  ``conv1d_b``, ``x_proj_b``, ``dt_proj_b``, ``D_b``; shared ``in_proj``/``out_proj``) — see
  ``shared/reference/models.md`` §10.1. Published ``mamba_ssm`` weights load with no renaming, and
  the counts follow the closed form ``P_uni = E(3D + 2R + 3N + 7)`` plus ``E(3N + 2R + 7)`` for the
  backward branch (E = expand·D, R = ⌈D/16⌉, N = d_state; bias-free in/out projections).
* **Scan engine** (the ``backend``):

  - ``"mambapy"`` — the selective scan in plain PyTorch, using the Blelloch parallel scan of the
    ``mambapy`` package (``mambapy.pscan``) for the recurrence h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t x_t.
    Runs on CPU and GPU.
  - ``"mamba_ssm"`` — the official fused CUDA kernel ``mamba_ssm.ops.selective_scan_interface.
    selective_scan_fn`` with the same tensors (needs the package and a CUDA tensor).
  - ``"auto"`` (default) — ``mamba_ssm`` when it is importable *and* the input is on CUDA,
    otherwise ``mambapy``. The fallback is silent by design (CPU tests, machines without the
    kernel); force ``backend="mamba_ssm"`` to make a missing kernel an error instead.

  Both engines compute the same function (the equivalence test in ``tests/lq_rppg/test_mamba.py``
  checks it where the kernel exists). The bidirectional variant runs the backward branch on the
  time-reversed ``xz`` (gate included), flips its output back and *adds* it (no averaging) before
  the shared ``out_proj``, as VideoMamba's fused path does. (VideoMamba's slow path silently drops
  the backward branch; this implementation always runs both.)

The readout ``y_t = C_t·h_t`` is written as an element-wise product and sum, so that
``torch.utils.flop_counter.FlopCounterMode`` counts the linear/conv parts only and the scan is
added analytically (:func:`scan_macs`), which is how ``models.md`` reports MACs.

>>> import torch
>>> m = Mamba(d_model=64, d_state=48, d_conv=4, expand=2, bimamba=True)
>>> sum(p.numel() for p in m.parameters())
65280
>>> m(torch.randn(2, 10, 64)).shape
torch.Size([2, 10, 64])
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

Backend = Literal["auto", "mambapy", "mamba_ssm"]
BACKENDS = ("auto", "mambapy", "mamba_ssm")


class MambaBackendError(RuntimeError):
    """The requested scan backend is not available for this tensor."""


@functools.lru_cache(maxsize=1)
def _mamba_ssm_scan():
    """The official CUDA selective-scan function, or ``None`` when ``mamba_ssm`` is not installed."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - ImportError, or a broken CUDA extension raising at import
        return None
    return selective_scan_fn


#: Recompute only scans whose (B, L, E, N) state tensor has at least this many elements (4 MB in
#: float32): below it, storing costs little and the extra forward would dominate (the label lab's
#: ~800-parameter quantizers train ~30 % slower with it).
RECOMPUTE_MIN_STATES = 2**20


def mamba_ssm_available() -> bool:
    """True when the official ``mamba_ssm`` selective-scan kernel can be imported."""
    return _mamba_ssm_scan() is not None


def _pscan(a: Tensor, bx: Tensor) -> Tensor:
    """h_t = a_t ⊙ h_{t−1} + bx_t over dim 1 (shapes (B, L, E, N)), via mambapy's parallel scan."""
    from mambapy.pscan import pscan

    return pscan(a, bx)


def selective_scan_ref(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, z: Tensor, delta_bias: Tensor
) -> Tensor:
    """Pure-PyTorch selective scan with the argument layout of ``mamba_ssm``'s ``selective_scan_fn``.

    u, delta, z: (B, E, L); A: (E, N); B, C: (B, N, L); D, delta_bias: (E,). Returns (B, E, L):
    ``(C·h + D u) ⊙ SiLU(z)`` with Δ = softplus(delta + delta_bias) and h from the ZOH-discretised
    recurrence (Ā = exp(ΔA), B̄x = Δ B x — the "simplified" discretisation ``mamba_ssm`` uses).
    """
    dt = F.softplus((delta + delta_bias[None, :, None]).float()).transpose(1, 2)  # (B, L, E)
    uu = u.float().transpose(1, 2)  # (B, L, E)
    bt = B.float().transpose(1, 2)  # (B, L, N)
    ct = C.float().transpose(1, 2)  # (B, L, N)
    d_a = torch.exp(dt.unsqueeze(-1) * A.float())  # (B, L, E, N)
    bx = (dt * uu).unsqueeze(-1) * bt.unsqueeze(2)  # (B, L, E, N)
    h = _pscan(d_a, bx)  # (B, L, E, N)
    y = (h * ct.unsqueeze(2)).sum(-1) + D.float() * uu  # (B, L, E); element-wise on purpose (see module doc)
    y = y * F.silu(z.float().transpose(1, 2))
    return y.transpose(1, 2).to(u.dtype)


class Mamba(nn.Module):
    """One Mamba mixer (B, L, D) → (B, L, D); ``bimamba=True`` adds VideoMamba's backward branch.

    Constructor arguments and initialisation follow ``mamba_ssm`` 2.x ``Mamba`` (dt bias drawn
    log-uniformly in [dt_min, dt_max] and inverted through softplus, S4D-real ``A_log``, D = 1);
    the backward-branch layers of the bidirectional variant keep PyTorch's default init as in the
    VideoMamba fork (the models that use it re-initialise all Linear layers anyway).
    """

    #: A module-hook profiler (thop) sees none of this module's weights: the fused CUDA path reads
    #: them directly instead of calling the sub-modules (models.md §11). Used by ``lq_rppg.profile``.
    fused_kernel_reads_weights = True
    #: Recompute the pure-PyTorch scan in the backward pass instead of storing its (B, L, E, N)
    #: intermediates (at the cost of one extra scan forward; results identical).
    #: Has no effect on the fused ``mamba_ssm`` kernel, which stores no states anyway.
    recompute_scan: bool = True

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        bimamba: bool = False,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown Mamba backend {backend!r}; valid: {', '.join(BACKENDS)}")
        if dt_init not in ("random", "constant"):
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        self.d_model = int(d_model)
        self.d_state = int(d_state)
        self.d_conv = int(d_conv)
        self.expand = expand
        self.d_inner = int(expand * self.d_model)
        self.dt_rank = math.ceil(self.d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.bimamba = bool(bimamba)
        self.backend: Backend = backend
        e, n, r = self.d_inner, self.d_state, self.dt_rank

        self.in_proj = nn.Linear(self.d_model, 2 * e, bias=bias)
        self.conv1d = self._depthwise(conv_bias)
        self.x_proj = nn.Linear(e, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, e, bias=True)
        std = r**-0.5 * dt_scale
        with torch.no_grad():
            if dt_init == "constant":
                self.dt_proj.weight.fill_(std)
            else:
                self.dt_proj.weight.uniform_(-std, std)
            dt = torch.exp(torch.rand(e) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]  # honoured by GPT-2-style re-inits
        self.A_log = nn.Parameter(self._s4d_real())
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D = nn.Parameter(torch.ones(e))
        self.D._no_weight_decay = True  # type: ignore[attr-defined]
        if self.bimamba:
            self.A_b_log = nn.Parameter(self._s4d_real())
            self.A_b_log._no_weight_decay = True  # type: ignore[attr-defined]
            self.conv1d_b = self._depthwise(conv_bias)
            self.x_proj_b = nn.Linear(e, r + 2 * n, bias=False)
            self.dt_proj_b = nn.Linear(r, e, bias=True)
            self.D_b = nn.Parameter(torch.ones(e))
            self.D_b._no_weight_decay = True  # type: ignore[attr-defined]
        self.out_proj = nn.Linear(e, self.d_model, bias=bias)

    def _depthwise(self, bias: bool) -> nn.Conv1d:
        return nn.Conv1d(
            self.d_inner, self.d_inner, kernel_size=self.d_conv, groups=self.d_inner, padding=self.d_conv - 1, bias=bias
        )

    def _s4d_real(self) -> Tensor:
        return torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1))

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, expand={self.expand}, "
            f"dt_rank={self.dt_rank}, bimamba={self.bimamba}, backend={self.backend!r}"
        )

    # -- forward -------------------------------------------------------------------------------
    def resolve_backend(self, x: Tensor) -> str:
        """Which scan engine runs for tensor ``x`` under this module's ``backend`` setting."""
        if self.backend == "mambapy":
            return "mambapy"
        if self.backend == "mamba_ssm":
            if not x.is_cuda:
                raise MambaBackendError("backend 'mamba_ssm' needs a CUDA tensor; got one on " + str(x.device))
            if not mamba_ssm_available():
                raise MambaBackendError("backend 'mamba_ssm' requested but the mamba_ssm package is not importable")
            return "mamba_ssm"
        return "mamba_ssm" if (x.is_cuda and mamba_ssm_available()) else "mambapy"

    def _branch(self, xz: Tensor, conv: nn.Conv1d, x_proj: nn.Linear, dt_proj: nn.Linear, a_log: Tensor,
                d: Tensor, engine: str) -> Tensor:
        """One scan direction: xz (B, 2E, L) → gated SSM output (B, E, L)."""
        seqlen = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)  # (B, E, L) each
        x = F.silu(conv(x)[..., :seqlen])  # causal depthwise conv
        x_dbl = x_proj(x.transpose(1, 2))  # (B, L, R + 2N)
        dt, b, c = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, dt_proj.weight).transpose(1, 2)  # (B, E, L); bias added inside the scan
        b = b.transpose(1, 2).contiguous()  # (B, N, L)
        c = c.transpose(1, 2).contiguous()
        a = -torch.exp(a_log.float())  # (E, N)
        if engine == "mamba_ssm":
            scan = _mamba_ssm_scan()
            return scan(x.contiguous(), dt.contiguous(), a, b, c, d.float(), z=z.contiguous(),
                        delta_bias=dt_proj.bias.float(), delta_softplus=True)
        if torch.is_grad_enabled() and self.recompute_scan and x.shape[0] * seqlen * x.shape[1] * self.d_state >= RECOMPUTE_MIN_STATES:
            # Training through the pure-PyTorch scan keeps every (B, L, E, N) intermediate of the
            # parallel scan for the backward pass: RhythmMamba's quick preset peaked at 4.5 GB RSS.
            # Recomputing the scan in backward instead (activation checkpointing of this one
            # deterministic, RNG-free function) keeps only its (B, E, L)-sized inputs and gives
            # bit-identical outputs and gradients (tests/lq_rppg/test_lq_mamba.py).
            return checkpoint(selective_scan_ref, x, dt, a, b, c, d, z, dt_proj.bias, use_reentrant=False)
        return selective_scan_ref(x, dt, a, b, c, d, z, dt_proj.bias)

    def forward(self, hidden_states: Tensor) -> Tensor:
        """hidden_states (B, L, D) → (B, L, D)."""
        if hidden_states.dim() != 3 or hidden_states.shape[-1] != self.d_model:
            raise ValueError(f"Mamba expects (B, L, {self.d_model}), got {tuple(hidden_states.shape)}")
        engine = self.resolve_backend(hidden_states)
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (B, 2E, L)
        y = self._branch(xz, self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D, engine)
        if self.bimamba:
            y_b = self._branch(xz.flip(-1), self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b, engine)
            y = y + y_b.flip(-1)
        return self.out_proj(y.transpose(1, 2))


def mamba_param_count(d_model: int, d_state: int = 48, d_conv: int = 4, expand: int = 2, bimamba: bool = False) -> int:
    """Closed-form parameter count of :class:`Mamba` (bias-free in/out projections, conv bias on).

    >>> mamba_param_count(64, bimamba=True), mamba_param_count(1, bimamba=True), mamba_param_count(96)
    (65280, 618, 86592)
    """
    e, n, r = expand * d_model, d_state, math.ceil(d_model / 16)
    uni = e * (2 * d_model) + e * d_conv + e + e * (r + 2 * n) + (r * e + e) + e * n + e + e * d_model
    extra = e * n + (e * d_conv + e) + e * (r + 2 * n) + (r * e + e) + e
    return uni + (extra if bimamba else 0)


def scan_macs(model: nn.Module, seq_lens: dict[Mamba, int] | int) -> int:
    """Analytic MAC estimate of the selective scans FlopCounterMode does not see.

    ≈ 3 MACs per (token, inner channel, state) per direction (Ā multiply, B̄x input term, C·h
    readout), the estimate of ``models.md`` §0. ``seq_lens`` is the number of tokens each Mamba
    layer processes per clip (batch copies included), one int for all layers or a per-layer dict
    (a layer missing from the dict processed no token).
    """
    total = 0
    for m in model.modules():
        if isinstance(m, Mamba):
            length = seq_lens if isinstance(seq_lens, int) else seq_lens.get(m, 0)
            total += 3 * length * m.d_inner * m.d_state * (2 if m.bimamba else 1)
    return total


def set_backend(model: nn.Module, backend: Backend) -> None:
    """Set the scan backend of every :class:`Mamba` inside ``model``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown Mamba backend {backend!r}; valid: {', '.join(BACKENDS)}")
    for m in model.modules():
        if isinstance(m, Mamba):
            m.backend = backend


class BiMambaBlock(nn.Module):
    """LQ-rPPG's ``BiMamba_block``: x ← x + Mamba_bi(LayerNorm(x)) — no FFN, no drop path (§10.1).

    Sub-module names (``x_norm``, ``mamba``) match the release so its checkpoints load.

    >>> sum(p.numel() for p in BiMambaBlock(64).parameters())
    65408
    """

    def __init__(self, d_model: int, d_state: int = 48, d_conv: int = 4, expand: int = 2, backend: Backend = "auto"):
        super().__init__()
        self.x_norm = nn.LayerNorm(d_model)
        self.mamba = Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand, bimamba=True, backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mamba(self.x_norm(x))
