"""RhythmMamba baseline: exact size and release names, block semantics, loss, method plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.method import MethodConfigError
from benchmark.registry import create_method
from methods.rhythmmamba import BlockMamba, FrequencyDomainFFN, RhythmMambaNet, label_hr_bpm, rhythmmamba_loss

FS = 30.0


@pytest.fixture(autouse=True)
def _seeded_one_thread(one_thread):
    torch.manual_seed(0)


def test_parameter_count_and_release_names():
    net = RhythmMambaNet()
    assert sum(p.numel() for p in net.parameters()) == 4_922_125
    sd = net.state_dict()
    block = {k.removeprefix("blocks.0.") for k in sd if k.startswith("blocks.0.")}
    mamba = {f"attn.mamba.{n}" for n in ("in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
                                         "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight")}
    bn = lambda p: {f"{p}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}  # noqa: E731
    expected = mamba | {"norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.norm.weight", "attn.norm.bias",
                        "mlp.r", "mlp.i", "mlp.rb", "mlp.ib", "mlp.fc1.0.weight", "mlp.fc2.0.weight"}
    assert block == expected | bn("mlp.fc1.1") | bn("mlp.fc2.1")
    assert {k for k in sd if not k.startswith("blocks.")} >= {"Fusion_Stem.stem11.0.weight", "stem3.0.weight",
                                                             "ConvBlockLast.weight", "ConvBlockLast.bias"}
    assert sd["stem3.0.weight"].shape == (96, 24, 2, 5, 5) and sd["blocks.23.mlp.r"].shape == (192, 192)
    # init quirks kept: dt bias zeroed; out_proj rescaled by 1/sqrt(24) (kaiming-uniform bound 1/sqrt(192))
    assert torch.count_nonzero(sd["blocks.0.attn.mamba.dt_proj.bias"]) == 0
    assert float(sd["blocks.0.attn.mamba.out_proj.weight"].abs().max()) <= 1 / np.sqrt(192) / np.sqrt(24) + 1e-6
    # drop path [0] + linspace(0, 0.1, 24), indexed 0..23
    assert net.blocks[0].drop_path.__class__.__name__ == "Identity"
    assert net.blocks[23].drop_path.p == pytest.approx(0.1 * 22 / 23)


def test_ffn_uses_only_diagonals():
    ffn = FrequencyDomainFFN(8, 2).eval()
    x = torch.randn(2, 12, 8)
    y = ffn(x)
    with torch.no_grad():
        ffn.r += torch.randn(16, 16) * (1 - torch.eye(16))  # change only off-diagonal entries
    torch.testing.assert_close(ffn(x), y)


def test_multi_temporal_averaging_with_identity_mixer():
    blk = BlockMamba(8, 2)
    blk.attn = torch.nn.Identity()  # every copy then returns its own (shifted) tokens
    x = torch.randn(2, 22, 8)  # 22 = 4·5 + 2: the two tail tokens pass through
    torch.testing.assert_close(blk.multi_temporal(x), x)


def test_forward_backward_tiny_and_errors():
    net = RhythmMambaNet(depth=2)
    x = torch.randn(2, 3, 16, 16, 16)
    y = net(x)
    assert y.shape == (2, 16)
    label = torch.sin(2 * torch.pi * torch.tensor([[1.2], [1.5]]) * torch.arange(16) / FS)
    loss = rhythmmamba_loss(y, label, torch.tensor([FS, FS]))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="even clip length"):
        net(torch.randn(1, 3, 15, 16, 16))
    with pytest.raises(ValueError, match="multiple of 8"):
        net(torch.randn(1, 3, 16, 12, 12))


def test_label_hr_and_loss_prefers_the_right_rhythm():
    t = torch.arange(160) / FS
    label = torch.sin(2 * torch.pi * 1.25 * t)[None]  # 75 bpm
    assert abs(label_hr_bpm(label[0].numpy(), FS) - 75) < 1.0
    good = rhythmmamba_loss(label + 0.1 * torch.randn(1, 160), label, FS)
    bad = rhythmmamba_loss(torch.sin(2 * torch.pi * 2.0 * t)[None], label, FS)
    assert float(good) < float(bad) - 0.05


def test_method_plumbing():
    m = create_method("rhythmmamba", frames=16, size=16, depth=2)
    spec = m.input_spec()
    assert spec.transforms == ("standardized",) and spec.label == "standardized"
    assert create_method("rhythmmamba").example_shape() == (3, 160, 128, 128)
    assert m.paper_recipe["lr"] == 3e-4 and m.paper_recipe["epochs"] == 30
    batch = {"frames": torch.randn(2, 3, 16, 16, 16), "label": torch.randn(2, 16), "fps": torch.full((2,), FS)}
    out = m.forward(m.get_model(), batch)
    assert torch.isfinite(m.loss(out, batch))
    assert torch.allclose(m.signal(out).std(-1), torch.ones(2))
    with pytest.raises(MethodConfigError, match="even"):
        create_method("rhythmmamba", frames=15)
    with pytest.raises(MethodConfigError, match="backend"):
        create_method("rhythmmamba", backend="gpu")
