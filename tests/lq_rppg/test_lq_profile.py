"""Efficiency helpers: thop-visible parameters (models.md §11) and FlopCounter MACs at the reference shape."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lq_rppg.mamba import BiMambaBlock
from lq_rppg.model import C2FModel
from lq_rppg.profile import hook_visible_params, profile_model, true_params
from methods.rhythmmamba import RhythmMambaNet


pytestmark = pytest.mark.usefixtures("one_thread")


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.direct = nn.Parameter(torch.zeros(7))  # owned by an unregistered module: never counted
        self.used = nn.Sequential(nn.Linear(3, 4), nn.GELU())  # Sequential is descended into
        self.unused = nn.Linear(3, 5)  # registered but never called: 0
        self.mixer = BiMambaBlock(2, d_state=4)  # LN counted; the fused Mamba's weights are not

    def forward(self, x):
        return self.used(x).sum() + self.mixer(x[..., :2]).sum() + self.direct.sum()


def test_hook_visible_rule_on_a_toy():
    m = Toy()
    assert hook_visible_params(m, torch.randn(1, 5, 3)) == (3 * 4 + 4) + 2 * 2
    assert true_params(m) > hook_visible_params(m, torch.randn(1, 5, 3))


def test_c2f_reference_profile():
    r = profile_model(C2FModel(frames=160), torch.randn(1, 3, 160, 128, 128))
    assert r["params"] == 405_453
    assert r["hook_visible_params"] == 134_093 == 405_453 - 4 * 65_280 - 10_240
    assert r["macs_counted"] / 1e9 == pytest.approx(9.094, abs=0.001)
    assert r["macs_scan_est"] == 3 * 160 * 128 * 48 * 2 * 4


def test_rhythmmamba_reference_profile():
    r = profile_model(RhythmMambaNet(), torch.randn(1, 3, 160, 128, 128))
    assert r["params"] == 4_922_125
    assert r["hook_visible_params"] == 1_065_229 == 4_922_125 - 24 * (86_592 + 74_112)
    assert r["macs_counted"] / 1e9 == pytest.approx(13.42, abs=0.01)
    assert r["macs_scan_est"] == 3 * 4 * 80 * 192 * 48 * 24  # 4 shifted copies of 80 tokens per block


def test_efficiency_hooks_of_both_methods_on_untrained_models():
    from benchmark.efficiency import count_macs
    from benchmark.registry import create_method

    m = create_method("lq_rppg", frames=32, size=32)
    assert m.example_shape() == (3, 32, 32, 32)
    assert create_method("lq_rppg").example_shape() == (3, 160, 128, 128)
    extras = m.efficiency_extras()
    assert extras == {"params_hook_visible": 134_093, "macs_scan_est": 3 * 32 * 128 * 48 * 2 * 4}
    # the lead's MAC counter runs method.forward on an untrained model in eval mode: no codebook error
    assert count_macs(m, m.inference_model().eval(), m.example_shape()) > 0
    rm = create_method("rhythmmamba", frames=16, size=16, depth=2)
    assert rm.efficiency_extras()["macs_scan_est"] == 3 * 4 * 8 * 192 * 48 * 2
