"""LQ-rPPG method: config validation, declared phases, codebook flow between phases, losses, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmark.method import MethodConfigError
from benchmark.registry import create_method, list_methods
from lq_rppg.method import CodebookError
from lq_rppg.model import ChunkLengthError
from lq_rppg.quantizer import LabelQuantizer, bandpass_zscore, nearest_code

FS, T, S = 30.0, 32, 16
CONF = Path(__file__).resolve().parents[2] / "benchmark" / "conf" / "method"


@pytest.fixture(autouse=True)
def _seeded_one_thread(one_thread):
    torch.manual_seed(0)


def make_batch(b: int = 2, t: int = T, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    tt = torch.arange(t) / FS
    hr = torch.tensor([1.1, 1.6, 1.3, 0.9])[:b, None]
    label = torch.sin(2 * torch.pi * hr * tt) + 0.1 * torch.randn(b, t, generator=g)
    return {"frames": torch.randn(b, 3, t, S, S, generator=g), "label": label, "fps": torch.full((b,), FS)}


def train_labels() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(600) / FS
    return [np.sin(2 * np.pi * f * t) + 0.1 * rng.standard_normal(len(t)) for f in (1.0, 1.3, 1.7)]


def test_registered_with_reference_input():
    assert "lq_rppg" in list_methods()
    m = create_method("lq_rppg")
    spec = m.input_spec()
    assert (spec.frames, spec.size, spec.transforms, spec.label) == (160, 128, ("standardized",), "standardized")
    assert m.example_shape() == (3, 160, 128, 128)
    assert sum(p.numel() for p in m.inference_model().parameters()) == 405_453


@pytest.mark.parametrize(
    ("cfg", "match"),
    [({"max_bits": 0}, "1–5"), ({"max_bits": 6}, "1–5"), ({"supervision": "coarse"}, "supervision"),
     ({"labels": "soft"}, "labels"), ({"quantizer": "kmeans"}, "quantizer"), ({"backend": "cuda"}, "backend"),
     ({"size": 20}, "multiple of 8"), ({"lq_checkpoints": ["a", "b"]}, "lq_checkpoints"), ({"bits": 3}, "unknown")],
)
def test_config_errors(cfg, match):
    with pytest.raises(MethodConfigError, match=match):
        create_method("lq_rppg", **cfg)


def test_declared_phases_per_variant():
    names = lambda **kw: [p.name for p in create_method("lq_rppg", frames=T, size=S, **kw).phases()]  # noqa: E731
    assert names() == ["quantizer", "c2f"]
    assert names(quantizer="lloyd") == ["c2f"]
    assert names(labels="raw") == ["c2f"]
    m = create_method("lq_rppg", frames=T, size=S, lq_epochs=3, c2f_epochs=7)
    lq, c2f = m.phases()
    assert (lq.epochs, lq.lr, lq.weight_decay, lq.select) == (3, 1e-3, 0.0, "val_loss") and lq.on_end is not None
    assert (c2f.epochs, c2f.weight_decay) == (7, 1e-5)
    assert len(lq.module()) == 5 and [q.num_codebooks for q in lq.module()] == [2, 4, 8, 16, 32]


def test_c2f_without_codebooks_is_an_error():
    m = create_method("lq_rppg", frames=T, size=S)
    c2f = m.phases()[-1]
    with pytest.raises(CodebookError, match="without quantizer codebooks.*'quantizer' phase"):
        c2f.forward(c2f.module(), make_batch())
    m = create_method("lq_rppg", frames=T, size=S, quantizer="lloyd")
    with pytest.raises(CodebookError, match="prepare"):
        m.forward(m.get_model(), make_batch())


def test_chunk_length_mismatch_names_both_lengths():
    m = create_method("lq_rppg", frames=T, size=S, labels="raw")
    with pytest.raises(ChunkLengthError, match=f"clip length 24 differs from the position-embedding length {T}"):
        m.forward(m.get_model(), make_batch(t=24))


def test_two_phase_training_flow():
    m = create_method("lq_rppg", frames=T, size=S)
    lq_phase, c2f_phase = m.phases()
    lqs = lq_phase.module()
    opt = torch.optim.AdamW([p for p in lqs.parameters() if p.requires_grad], lr=1e-3)
    for step in range(2):
        out = lq_phase.forward(lqs, make_batch(seed=step))
        terms = lq_phase.loss(out, make_batch(seed=step), epoch=0, num_epochs=1)
        assert {"loss", "lq1_rec", "lq5_commit"} <= set(terms) and torch.isfinite(terms["loss"])
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    lq_phase.on_end(lqs)
    assert all(not p.requires_grad for p in lqs.parameters()) and not lqs.training
    model = c2f_phase.module()
    assert model.has_codebooks
    torch.testing.assert_close(model.codebook_2, lqs[1].codebook)
    torch.testing.assert_close(model.codebook_final, lqs[4].codebook)
    batch = make_batch()
    out = c2f_phase.forward(model, batch)
    terms = c2f_phase.loss(out, batch, epoch=0, num_epochs=1)
    assert {f"stage{k}_{t}" for k in range(1, 5) for t in ("cls", "rec")} | {"final_cls", "final_rec"} <= set(terms)
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert all(p.grad is None for p in lqs.parameters())  # the quantizers stay frozen
    sig = m.signal(out)
    assert sig.shape == (2, T) and torch.allclose(sig.mean(-1), torch.zeros(2), atol=1e-5)


def test_lloyd_prepare_and_training_reduces_loss():
    m = create_method("lq_rppg", frames=T, size=S, quantizer="lloyd")
    m.prepare(train_labels(), FS)
    model = m.get_model()
    assert model.has_codebooks and model.codebook_1.reshape(-1).tolist()[0] < 0 < model.codebook_1.reshape(-1).tolist()[1]
    batch = make_batch()
    # CE targets are the nearest codewords of the filtered label
    y = torch.tensor(bandpass_zscore(batch["label"].numpy(), FS), dtype=torch.float32)
    idx, _ = m._codes(y, 3)
    torch.testing.assert_close(idx, nearest_code(y, model.codebook_3)[0])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        terms = m.loss(m.forward(model, batch), batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"]))
    assert losses[-1] < losses[0] - 0.1, losses


def test_loss_terms_of_ablations():
    batch = make_batch()
    m = create_method("lq_rppg", frames=T, size=S, quantizer="lloyd", supervision="final_only", max_bits=3)
    m.prepare(train_labels(), FS)
    assert m.stage_bits == (1, 2, 3, 3) and m.final_bits == 3
    assert m.get_model().codebook_final.shape == (8, 1)
    terms = m.loss(m.forward(m.get_model(), batch), batch)
    assert set(terms) == {"loss", "final_cls", "final_rec"}
    m = create_method("lq_rppg", frames=T, size=S, labels="raw")
    m.prepare(train_labels(), FS)  # a no-op for raw labels
    assert not m.get_model().has_codebooks
    terms = m.loss(m.forward(m.get_model(), batch), batch)
    assert set(terms) == {"loss", "final_rec"} | {f"stage{k}_rec" for k in range(1, 5)}
    assert torch.isfinite(terms["loss"])


def test_ablation_yamls_create_methods():
    files = sorted(CONF.glob("lq_rppg_*.yaml"))
    assert {f.stem for f in files} >= {"lq_rppg_bits3", "lq_rppg_bits4", "lq_rppg_final_only", "lq_rppg_raw_labels",
                                      "lq_rppg_lloyd"}
    for f in files:
        node = yaml.safe_load(f.read_text())
        assert node.pop("defaults")[0] == "lq_rppg"  # composed on the method's registered defaults
        assert node.pop("name") == "lq_rppg"
        assert node.pop("variant") == f.stem  # shown as its own leaderboard row
        m = create_method("lq_rppg", **node)
        for k, v in node.items():
            assert getattr(m.cfg, k) == v


def test_release_checkpoints_load(tmp_path):
    frames = T
    for b in range(1, 6):  # the release's {name}_{b}th_LQ_Epoch{e}.pth files (DataParallel prefix)
        lq = LabelQuantizer(2**b, length=frames)
        lq.quantizer.embeddings.weight.data = torch.linspace(-1, 1, 2**b)[:, None]
        torch.save({f"module.{k}": v for k, v in lq.state_dict().items()}, tmp_path / f"x_{b}th_LQ_Epoch0.pth")
    src = create_method("lq_rppg", frames=frames, size=S, labels="raw").get_model()
    state = {f"module.{k}": v for k, v in src.state_dict().items() if not k.startswith("codebook_")}
    torch.save({"C2F_model": state}, tmp_path / "x_rPPG_Epoch49.pth")

    paths = [str(tmp_path / f"x_{b}th_LQ_Epoch0.pth") for b in range(1, 6)]
    m = create_method("lq_rppg", frames=frames, size=S, lq_checkpoints=paths)
    assert [p.name for p in m.phases()] == ["c2f"]
    m.load_checkpoint(tmp_path / "x_rPPG_Epoch49.pth")
    model = m.inference_model()
    assert model.has_codebooks
    torch.testing.assert_close(model.codebook_4.reshape(-1), torch.linspace(-1, 1, 16))
    torch.testing.assert_close(model.position_embedding, src.position_embedding)
    out = m.forward(model.eval(), make_batch())
    assert torch.isfinite(m.signal(out)).all()
    with pytest.raises(FileNotFoundError):
        m.load_checkpoint(tmp_path / "missing.pth")
