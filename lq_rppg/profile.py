"""Efficiency helpers: true parameters, what a module-hook profiler (thop) sees, MACs per clip.

Why two parameter counts: the RhythmMamba and LQ-rPPG cost scripts report ``thop.profile``'s
parameter total, which is not the model size (``shared/reference/models.md`` §11). thop 0.1.1
counts a module's parameters only inside a forward hook of a *registered leaf type* (Conv, BN, LN,
Linear, pooling, activations, …) and only if that module's ``forward`` actually runs; it recurses
into unregistered modules, so parameters owned directly by a custom module (a position embedding,
RhythmMamba's FFN r/i/r_b/i_b) are never counted; and ``mamba_ssm``'s fused path reads
``in_proj``/``conv1d``/``x_proj``/``dt_proj``/``out_proj`` weights directly, so their hooks never
fire and ``A_log``/``D`` sit on the unregistered Mamba module: **every Mamba counts 0**.
:func:`hook_visible_params` applies exactly that rule (children of a module flagged
``fused_kernel_reads_weights`` count as not called), giving 134,093 for C2F and 1,065,229 for
RhythmMamba — the numbers behind the paper's "−88 % parameters".

MACs: ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, matmuls, linear layers;
MACs = FLOPs/2), which does not see the selective scan; :func:`profile_model` adds the scan's
analytic estimate (≈ 3 MACs per token × inner channel × state × direction), counting the tokens
each Mamba layer actually processes with a forward hook (RhythmMamba runs 4 shifted copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lq_rppg.mamba import Mamba, scan_macs

#: Module types thop 0.1.1 registers a counting hook for (``thop/profile.py: register_hooks``).
THOP_REGISTERED: tuple[type[nn.Module], ...] = (
    nn.ZeroPad2d,
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.SyncBatchNorm,
    nn.PReLU, nn.Softmax, nn.ReLU, nn.ReLU6, nn.LeakyReLU,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.Linear, nn.Dropout, nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d,
    nn.RNNCell, nn.GRUCell, nn.LSTMCell, nn.RNN, nn.GRU, nn.LSTM, nn.PixelShuffle,
)


def true_params(model: nn.Module) -> int:
    """All parameters (trainable or not), each counted once."""
    return sum(p.numel() for p in model.parameters())


def _profile_pass(model: nn.Module, x: torch.Tensor, count_flops: bool = True) -> tuple[set[nn.Module], dict[Mamba, int], float]:
    """One eval/no-grad forward recording which modules ran, tokens per Mamba layer, and FLOPs."""
    called: set[nn.Module] = set()
    tokens: dict[Mamba, int] = {}

    def mark(mod: nn.Module, inp: tuple, _out: Any) -> None:
        called.add(mod)
        if isinstance(mod, Mamba):
            tokens[mod] = tokens.get(mod, 0) + int(inp[0].shape[0] * inp[0].shape[1])

    hooks = [m.register_forward_hook(mark) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if count_flops:
                with FlopCounterMode(display=False) as fc:
                    model(x)
                flops = float(fc.get_total_flops())
            else:
                model(x)
                flops = float("nan")
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return called, tokens, flops


def _visible(model: nn.Module, called: set[nn.Module]) -> int:
    fused: set[nn.Module] = set()
    for m in model.modules():
        if getattr(m, "fused_kernel_reads_weights", False):
            fused.update(c for c in m.modules() if c is not m)

    def dfs(module: nn.Module) -> int:
        total = 0
        for child in module.children():
            if type(child) in THOP_REGISTERED:  # exact type, as thop looks it up
                if child in called and child not in fused:
                    total += sum(p.numel() for p in child.parameters())
            else:
                total += dfs(child)
        return total

    return dfs(model)


def hook_visible_params(model: nn.Module, x: torch.Tensor) -> int:
    """Parameter total a module-hook profiler like thop 0.1.1 reports for ``model(x)``.

    Rule (thop's ``dfs_count``): walking the module tree from the root, a child of a registered
    leaf type (:data:`THOP_REGISTERED`, exact type; not Sequential/ModuleList) contributes all its
    parameters if its forward ran, else 0, and is not descended into; any other child is descended
    into, and parameters it owns directly are never counted. Sub-modules of a module whose fused
    kernel reads their weights (``fused_kernel_reads_weights``, i.e. :class:`lq_rppg.mamba.Mamba`)
    count as not called, as on a GPU with ``mamba_ssm``. One forward pass runs under no_grad.
    """
    called, _, _ = _profile_pass(model, x, count_flops=False)
    return _visible(model, called)


def profile_model(model: nn.Module, x: torch.Tensor, *, time_scale: float = 1.0) -> dict[str, float]:
    """Parameters and MACs of one forward ``model(x)`` (batch 1 expected), eval mode, no grad.

    Returns ``params`` (true), ``hook_visible_params`` (thop's view), ``macs_counted``
    (FlopCounterMode, scan excluded), ``macs_scan_est`` and ``macs_total``. ``time_scale``
    multiplies the MACs: run a clip of T' frames and pass T/T' to approximate T frames (every layer
    is linear in T up to the depthwise conv's 3 padded outputs per Mamba call — about 1e-4 relative).
    """
    called, tokens, flops = _profile_pass(model, x)
    macs = flops / 2 * time_scale
    scan = scan_macs(model, tokens) * time_scale
    return {
        "params": true_params(model),
        "hook_visible_params": _visible(model, called),
        "macs_counted": float(macs),
        "macs_scan_est": float(scan),
        "macs_total": float(macs + scan),
    }


def efficiency_extras(model: nn.Module, shape: Sequence[int]) -> dict[str, float]:
    """Extra columns for ``benchmark.efficiency`` (``efficiency_extras`` hook of a method):
    ``params_hook_visible`` (what thop reports) and ``macs_scan_est`` (selective scans, which
    FlopCounterMode does not count), for one batch-1 clip of ``shape`` (C, T, H, W)."""
    dev = next(model.parameters()).device
    called, tokens, _ = _profile_pass(model, torch.zeros((1, *shape), device=dev), count_flops=False)
    return {"params_hook_visible": _visible(model, called), "macs_scan_est": scan_macs(model, tokens)}
