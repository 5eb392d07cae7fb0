"""Mamba layer: official parameter set and counts, scan correctness, bidirectional semantics, backends."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lq_rppg.mamba import (
    BiMambaBlock,
    Mamba,
    MambaBackendError,
    mamba_param_count,
    mamba_ssm_available,
    scan_macs,
    selective_scan_ref,
    set_backend,
)

OFFICIAL = {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
            "A_log", "D", "out_proj.weight"}
BI_EXTRA = {"A_b_log", "conv1d_b.weight", "conv1d_b.bias", "x_proj_b.weight", "dt_proj_b.weight", "dt_proj_b.bias", "D_b"}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("d_model", "bimamba", "expected"),
    [(64, True, 65_280), (1, True, 618), (96, False, 86_592), (64, False, 44_928)],
)
def test_parameter_counts_match_closed_form(d_model, bimamba, expected):
    m = Mamba(d_model, d_state=48, d_conv=4, expand=2, bimamba=bimamba)
    assert n_params(m) == expected == mamba_param_count(d_model, 48, 4, 2, bimamba)


def test_bimamba_block_counts():
    assert n_params(BiMambaBlock(64)) == 65_408
    assert n_params(BiMambaBlock(1)) == 620


def test_state_dict_names_and_shapes_match_mamba_ssm():
    uni = Mamba(96, d_state=48)
    assert set(uni.state_dict()) == OFFICIAL
    bi = Mamba(64, d_state=48, bimamba=True)
    sd = bi.state_dict()
    assert set(sd) == OFFICIAL | BI_EXTRA
    e, n, r = 128, 48, 4
    assert sd["in_proj.weight"].shape == (2 * e, 64)
    assert sd["conv1d.weight"].shape == sd["conv1d_b.weight"].shape == (e, 1, 4)
    assert sd["x_proj.weight"].shape == sd["x_proj_b.weight"].shape == (r + 2 * n, e)
    assert sd["dt_proj.weight"].shape == (e, r)
    assert sd["A_log"].shape == sd["A_b_log"].shape == (e, n)
    assert sd["out_proj.weight"].shape == (64, e)
    # S4D-real init and softplus(dt bias) inside [dt_min, dt_max]
    assert torch.allclose(sd["A_log"][0].exp(), torch.arange(1, n + 1, dtype=torch.float32))
    dt = F.softplus(sd["dt_proj.bias"])
    assert float(dt.min()) >= 1e-4 - 1e-7 and float(dt.max()) <= 0.1 + 1e-6


def _naive_scan(u, delta, A, B, C, D, z, bias):
    """Sequential recurrence, written independently of the module (the definition of the SSM)."""
    dt = F.softplus(delta + bias[None, :, None])  # (B, E, L)
    bsz, e, length = u.shape
    h = torch.zeros(bsz, e, A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, -1) * F.silu(z)


def test_parallel_scan_equals_sequential_recurrence():
    g = torch.Generator().manual_seed(0)
    bsz, e, n, length = 2, 6, 5, 23  # length not a power of two: exercises the scan's padding
    u, delta, z = (torch.randn(bsz, e, length, generator=g, dtype=torch.float64) for _ in range(3))
    A = -torch.rand(e, n, generator=g, dtype=torch.float64) * 3
    B, C = (torch.randn(bsz, n, length, generator=g, dtype=torch.float64) for _ in range(2))
    D, bias = torch.randn(e, generator=g, dtype=torch.float64), torch.randn(e, generator=g, dtype=torch.float64)
    got = selective_scan_ref(u.float(), delta.float(), A.float(), B.float(), C.float(), D.float(), z.float(), bias.float())
    want = _naive_scan(u, delta, A, B, C, D, z, bias)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


def test_unidirectional_is_causal_bidirectional_is_not():
    torch.manual_seed(0)
    x = torch.randn(1, 20, 8)
    x2 = x.clone()
    x2[:, 15:] += 1.0  # change only the future of t < 15
    uni, bi = Mamba(8, d_state=4), Mamba(8, d_state=4, bimamba=True)
    with torch.no_grad():
        torch.testing.assert_close(uni(x)[:, :15], uni(x2)[:, :15])
        assert not torch.allclose(bi(x)[:, :15], bi(x2)[:, :15])


def test_bidirectional_is_forward_plus_flipped_backward_branch():
    torch.manual_seed(1)
    bi = Mamba(8, d_state=4, bimamba=True)
    sd = bi.state_dict()
    fwd, bwd = Mamba(8, d_state=4), Mamba(8, d_state=4)
    fwd.load_state_dict({k: sd[k] for k in OFFICIAL})
    bwd.load_state_dict({k: sd[{"A_log": "A_b_log", "D": "D_b"}.get(k, k.replace("conv1d.", "conv1d_b.")
                                 .replace("x_proj.", "x_proj_b.").replace("dt_proj.", "dt_proj_b."))] for k in OFFICIAL})
    x = torch.randn(2, 17, 8)
    with torch.no_grad():
        torch.testing.assert_close(bi(x), fwd(x) + bwd(x.flip(1)).flip(1), rtol=1e-5, atol=1e-6)


def test_backend_resolution_and_errors():
    m = Mamba(4, d_state=4)
    x = torch.randn(1, 5, 4)
    assert m.resolve_backend(x) == "mambapy"  # CPU tensor: always the pure-PyTorch scan
    set_backend(m, "mamba_ssm")
    with pytest.raises(MambaBackendError, match="CUDA"):
        m(x)
    with pytest.raises(ValueError, match="unknown Mamba backend"):
        Mamba(4, backend="triton")
    with pytest.raises(ValueError, match=r"expects \(B, L, 4\)"):
        Mamba(4)(torch.randn(1, 5, 3))


def test_scan_macs_estimate():
    m = BiMambaBlock(64)
    assert scan_macs(m, 160) == 3 * 160 * 128 * 48 * 2


@pytest.mark.skipif(not (torch.cuda.is_available() and mamba_ssm_available()), reason="needs CUDA and mamba_ssm")
def test_mambapy_and_mamba_ssm_backends_agree():
    torch.manual_seed(0)
    for bimamba in (False, True):
        m = Mamba(64, d_state=48, bimamba=bimamba).cuda()
        x = torch.randn(2, 160, 64, device="cuda")
        with torch.no_grad():
            set_backend(m, "mambapy")
            ref = m(x)
            set_backend(m, "mamba_ssm")
            got = m(x)
        torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-4)


def test_recomputed_scan_gives_identical_gradients_and_stores_less(monkeypatch):
    """Training recomputes the pure-PyTorch scan in backward (``Mamba.recompute_scan``): the output
    and every gradient are bit-identical to storing the scan, while the tensors autograd keeps for
    backward shrink (RhythmMamba quick peaked at 4.5 GB RSS with them stored)."""

    def run(recompute: bool):
        torch.manual_seed(0)
        m = Mamba(d_model=32, d_state=16, expand=2, bimamba=True, backend="mambapy")
        m.recompute_scan = recompute
        x = torch.randn(4, 24, 32, requires_grad=True)
        saved = []

        def pack(t):
            saved.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = m(x)
        (y ** 2).sum().backward()
        return y.detach(), [x.grad] + [p.grad for p in m.parameters()], sum(saved)

    y0, g0, stored0 = run(False)
    assert run(True)[2] == stored0  # 4·24·64·16 states: below RECOMPUTE_MIN_STATES, stored as before
    monkeypatch.setattr("lq_rppg.mamba.RECOMPUTE_MIN_STATES", 4 * 24 * 64 * 16)
    y1, g1, stored1 = run(True)
    assert torch.equal(y0, y1)
    assert all(torch.equal(a, b) for a, b in zip(g0, g1))
    # (B, L, E, N) = 4·24·64·16 elements per scan intermediate; several per direction when stored
    assert stored1 < stored0 / 3, (stored0, stored1)
