"""C2F model: exact size, release state-dict names, codebook handling, shape errors, tiny forward/backward."""

from __future__ import annotations

import pytest
import torch

from lq_rppg.model import C2FModel, ChunkLengthError, codebook_logits, soft_reconstruct

MAMBA_BI = ("in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
            "A_log", "D", "out_proj.weight", "A_b_log", "conv1d_b.weight", "conv1d_b.bias", "x_proj_b.weight",
            "dt_proj_b.weight", "dt_proj_b.bias", "D_b")


pytestmark = pytest.mark.usefixtures("one_thread")


BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def reference_c2f_keys() -> set[str]:
    """State-dict keys of the release's C2F_model (LQC2F.py), written out from its module tree."""
    keys = set()
    for s in ("stem11", "stem12", "stem21", "stem22"):
        keys |= {f"Fusion_Stem.{s}.0.weight", f"Fusion_Stem.{s}.0.bias"} | {f"Fusion_Stem.{s}.1.{b}" for b in BN}
    keys |= {"stem3.0.weight", "stem3.0.bias"} | {f"stem3.1.{b}" for b in BN}
    for k in range(1, 5):
        keys |= {f"mamba_{k}.0.x_norm.weight", f"mamba_{k}.0.x_norm.bias"}
        keys |= {f"mamba_{k}.0.mamba.{n}" for n in MAMBA_BI}
        keys |= {f"mamba{k}_token_head.{w}" for w in ("weight", "bias")}
        keys |= {f"mamba{k}_scalar_projection.{w}" for w in ("weight", "bias")}
    keys |= {f"rppg_predictor.time_feature_extractor.{i}.{w}" for i in (0, 2, 4) for w in ("weight", "bias")}
    keys |= {"rppg_predictor.last_conv.weight", "rppg_predictor.last_conv.bias", "position_embedding"}
    return keys


def test_parameter_count_at_reference_shape():
    m = C2FModel(frames=160)
    assert sum(p.numel() for p in m.parameters()) == 405_453
    blocks = sum(p.numel() for k in range(1, 5) for p in getattr(m, f"mamba_{k}").parameters())
    assert blocks == 4 * 65_408
    assert sum(p.numel() for p in m.rppg_predictor.parameters()) == 37_249


def test_state_dict_matches_release_names_plus_codebook_buffers():
    sd = C2FModel(frames=160).state_dict()
    extra = {"codebook_1", "codebook_2", "codebook_3", "codebook_4", "codebook_final", "codebook_loaded"}
    assert set(sd) == reference_c2f_keys() | extra
    assert sd["position_embedding"].shape == (1, 160, 64)
    assert sd["mamba_1.0.mamba.x_proj.weight"].shape == (4 + 96, 128)
    assert sd["stem3.0.weight"].shape == (64, 16, 3, 5, 5)
    assert [sd[f"codebook_{k}"].shape[0] for k in range(1, 5)] + [sd["codebook_final"].shape[0]] == [2, 4, 8, 16, 32]
    # the release's init zeroes every Linear bias, dt_proj.bias included
    assert torch.count_nonzero(sd["mamba_1.0.mamba.dt_proj.bias"]) == 0


def test_soft_reconstruction():
    cb = torch.tensor([[-1.0], [1.0]])
    h = torch.tensor([[-5.0, 0.0, 5.0]])
    s = soft_reconstruct(h, cb)
    # unit temperature: beyond the outer codewords the weights are e^-d vs e^-(d+2) → ±tanh(1)
    torch.testing.assert_close(s, torch.tensor([[-torch.tanh(torch.tensor(1.0)), 0.0, torch.tanh(torch.tensor(1.0))]]))
    assert codebook_logits(h, cb).shape == (1, 3, 2)


def test_tiny_forward_backward_with_and_without_codebooks():
    torch.manual_seed(0)
    m = C2FModel(frames=24)
    x = torch.randn(2, 3, 24, 16, 16)
    out = m(x)
    assert out["pred"].shape == out["signal"].shape == (2, 24) and len(out["heads"]) == 4
    # without codebooks the projections see the raw heads (release's no-codebook path)
    assert all(torch.equal(h, s) for h, s in zip(out["heads"], out["stage_signal"]))
    m.load_codebooks({b: torch.linspace(-1.5, 1.5, 2**b) for b in range(1, 6)})
    out = m(x)
    final_cb = m.codebook_final.reshape(-1)
    assert float(out["final"].min()) >= float(final_cb.min()) - 1e-6 and float(out["final"].max()) <= float(final_cb.max()) + 1e-6
    loss = out["signal"].pow(2).mean() + sum(h.pow(2).mean() for h in out["heads"])
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # codebooks travel with the state dict
    m2 = C2FModel(frames=24)
    m2.load_state_dict(m.state_dict())
    assert m2.has_codebooks and torch.equal(m2.codebook_3, m.codebook_3)


def test_input_errors():
    m = C2FModel(frames=32)
    with pytest.raises(ChunkLengthError, match="clip length 24 differs from the position-embedding length 32"):
        m(torch.randn(1, 3, 24, 16, 16))
    with pytest.raises(ValueError, match="multiple of 8"):
        m(torch.randn(1, 3, 32, 20, 20))
    with pytest.raises(ValueError, match="3 colour channels"):
        m(torch.randn(1, 6, 32, 16, 16))
    with pytest.raises(ValueError, match="missing codebook"):
        m.load_codebooks({1: torch.zeros(2)})
    with pytest.raises(ValueError, match="must have 4 entries"):
        m.load_codebooks({b: torch.zeros(2**b + (b == 2)) for b in range(1, 6)})
    with pytest.raises(ValueError, match="1–5"):
        C2FModel(frames=32, final_bits=6)


def test_release_state_dict_loads_without_codebooks():
    src = C2FModel(frames=32)
    state = {f"module.{k}": v for k, v in src.state_dict().items() if not k.startswith("codebook_")}
    dst = C2FModel(frames=32)
    dst.load_reference_state_dict(state)
    torch.testing.assert_close(dst.position_embedding, src.position_embedding)
    assert not dst.has_codebooks
    with pytest.raises(KeyError, match="not a C2F_model"):
        dst.load_reference_state_dict({"foo": torch.zeros(1)})
