"""LQ-rPPG through the one trainer on the toy dataset: both phases, codebook hand-over, resume, Lloyd prepare."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data import ChunkDataset
from benchmark.labels import build_label_pipeline
from benchmark.registry import create_method
from benchmark.trainer import Trainer, TrainerConfig
from lq_rppg.method import training_label_chunks
from protocols.base import create_dataset
from protocols.preprocess import PreprocessConfig, preprocess

T, S = 32, 16


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def splits(tmp_path):
    recs = list(preprocess(create_dataset("toy", n_subjects=3, n_frames=96), PreprocessConfig(size=S),
                           tmp_path / "cache", progress=False))
    lab = build_label_pipeline(["standardized"])
    return (ChunkDataset(recs[:2], T, ("standardized",), label_transforms=lab),
            ChunkDataset(recs[2:], T, ("standardized",), label_transforms=lab))


def _cfg(**kw):
    return TrainerConfig(**{**dict(epochs=1, batch_size=2, lr=1e-3, select="last", device="cpu", progress=False), **kw})


def test_two_phases_through_the_trainer_and_resume(splits, tmp_path):
    train, val = splits
    m = create_method("lq_rppg", frames=T, size=S, dim=16, d_state=8, lq_epochs=2, c2f_epochs=1)
    res = Trainer(_cfg(), tmp_path / "run", seed=0).fit(m, train, val)
    assert [(h["phase"], h["epoch"]) for h in res.history] == [("quantizer", 0), ("quantizer", 1), ("c2f", 0)]
    assert all(np.isfinite(h["train_loss"]) for h in res.history)
    model = m.inference_model()
    assert model.has_codebooks
    torch.testing.assert_close(model.codebook_final, m.quantizers[4].codebook)
    # a second fit on the same run dir skips both finished phases but still hands the codebooks over
    m2 = create_method("lq_rppg", frames=T, size=S, dim=16, d_state=8, lq_epochs=2, c2f_epochs=1)
    Trainer(_cfg(), tmp_path / "run", seed=0).fit(m2, train, val)
    assert m2.inference_model().has_codebooks
    torch.testing.assert_close(m2.quantizers[2].codebook, m.quantizers[2].codebook)


def test_lloyd_prepare_from_the_chunk_dataset(splits, tmp_path):
    train, val = splits
    labels, rates = training_label_chunks(train)
    assert len(labels) == len(train) and rates == [30.0] * len(train)
    for i in (0, len(train) - 1):  # replays the dataset's own label path without decoding frames
        np.testing.assert_allclose(labels[i], train[i]["label"].numpy(), rtol=1e-6, atol=1e-6)
    m = create_method("lq_rppg", frames=T, size=S, dim=16, d_state=8, quantizer="lloyd", c2f_epochs=1)
    res = Trainer(_cfg(), tmp_path / "lloyd", seed=0).fit(m, train, val)
    assert [h["phase"] for h in res.history] == ["c2f"]
    cb = m.inference_model().codebook_2.reshape(-1)
    assert m.inference_model().has_codebooks and torch.all(cb[1:] > cb[:-1])
