"""The one trainer: resume after a crash mid-epoch, NaN loss, empty split, phases, same seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data import ChunkDataset
from benchmark.losses import neg_pearson
from benchmark.method import InputSpec, NeuralMethod, Phase
from benchmark.registry import register_method
from benchmark.runner import run
from benchmark.trainer import Trainer, TrainerConfig, TrainingError
from conftest import toy_protocol
from protocols.base import create_dataset
from protocols.preprocess import PreprocessConfig, preprocess


class TinyNet(nn.Module):
    def __init__(self, c: int = 3):
        super().__init__()
        self.conv = nn.Conv3d(c, 4, (3, 3, 3), padding=1)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Conv1d(4, 1, 1)

    def forward(self, x):  # (B, C, T, H, W) -> (B, T)
        h = self.drop(torch.relu(self.conv(x))).mean(dim=(3, 4))
        return self.head(h)[:, 0]


@register_method("test_tinynet")
class TinyMethod(NeuralMethod):
    """Tiny 3-D conv net (test-only plug-in)."""

    input = InputSpec(frames=60, size=16, transforms=("diff_normalized",), label="diff_normalized")

    @dataclass
    class Config(NeuralMethod.Config):
        nan_at_epoch: int | None = None

    def build_model(self):
        return TinyNet(self.in_channels)

    def loss(self, out, batch, *, epoch=0, num_epochs=1):
        loss = neg_pearson(out, batch["label"])
        if self.cfg.nan_at_epoch is not None and epoch == self.cfg.nan_at_epoch:
            loss = loss * float("nan")
        return loss


@register_method("test_twophase")
class TwoPhase(TinyMethod):
    """Two phases: a 'pre' phase training an auxiliary head, then the main model."""

    def phases(self):
        self.aux = nn.Linear(60, 60)

        def aux_fwd(m, b):
            return m(b["label"])

        def aux_loss(o, b, *, epoch=0, num_epochs=1):
            return ((o - b["label"]) ** 2).mean()

        def freeze(m):
            for p in m.parameters():
                p.requires_grad_(False)
            self.frozen = True

        return [Phase("pre", lambda: self.aux, aux_fwd, aux_loss, epochs=1, on_end=freeze),
                Phase("main", self.get_model, self.forward, self.loss)]


def _datasets(tmp_path, crash_after: int | None = None):
    loader = create_dataset("toy", n_subjects=3, n_frames=180)
    recs = list(preprocess(loader, PreprocessConfig(size=16), tmp_path / "cache", progress=False))

    class Crashing(ChunkDataset):
        calls = 0

        def __getitem__(self, i):
            type(self).calls += 1
            if crash_after is not None and type(self).calls > crash_after:
                raise KeyboardInterrupt("simulated kill")
            return super().__getitem__(i)

    from benchmark.labels import build_label_pipeline

    lab = build_label_pipeline(["diff_normalized"])
    train = Crashing(recs[:2], 60, ("diff_normalized",), label_transforms=lab)
    val = ChunkDataset(recs[2:], 60, ("diff_normalized",), label_transforms=lab)
    return train, val


def _cfg(**kw):
    base = dict(epochs=3, batch_size=2, optimizer="adamw", lr=1e-2, scheduler="onecycle", select="val_loss", device="cpu", progress=False)
    base.update(kw)
    return TrainerConfig(**base)


def _weight_norm(method) -> float:
    """A deterministic 'validation MAE' for ``select=val_mae`` tests: the weights' norm, which grows
    from the first epoch on here, so the best epoch is the one before the crash below."""
    return float(sum(p.detach().pow(2).sum() for p in method.get_model().parameters()))


@pytest.mark.parametrize("select", ["last", "val_loss", "val_mae"])
def test_resume_after_crash_mid_epoch_matches_uninterrupted(tmp_path, select):
    """Under every selection rule the resumed run ends with the uninterrupted run's model and its
    best epoch/value (issue 17: resume was tested with ``last`` only, so not restoring the
    best-so-far value of ``val_loss``/``val_mae`` passed)."""
    from benchmark.registry import create_method

    metric = _weight_norm if select == "val_mae" else None
    cfg = _cfg(select=select, lr=0.2) if select == "val_mae" else _cfg(select=select)
    train, val = _datasets(tmp_path)
    m_ref = create_method("test_tinynet")
    ref = Trainer(cfg, tmp_path / "ref", seed=3, val_metric=metric).fit(m_ref, train, val)
    # 6 chunks per epoch (2 records x 3 chunks); crash during the 2nd epoch
    train_c, val_c = _datasets(tmp_path, crash_after=6 + 3)
    m_a = create_method("test_tinynet")
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "run", seed=3, val_metric=metric).fit(m_a, train_c, val_c)
    m_b = create_method("test_tinynet")
    res = Trainer(cfg, tmp_path / "run", seed=3, val_metric=metric).fit(m_b, train, val)
    assert res.resumed_from == ("main", 0)  # epoch 1 (index 0) was the last complete one
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert res.best == ref.best
    if select == "val_mae":
        assert ref.best["main"]["epoch"] == 0  # the best epoch lies before the crash: it must be restored
    for (k, a), (_, b) in zip(m_ref.get_model().state_dict().items(), m_b.get_model().state_dict().items()):
        assert torch.equal(a, b), k


def test_nan_loss_names_epoch_and_batch(tmp_path):
    from benchmark.registry import create_method

    train, val = _datasets(tmp_path)
    with pytest.raises(TrainingError, match=r"epoch 2, training batch 1"):
        Trainer(_cfg(), tmp_path / "nan", seed=0).fit(create_method("test_tinynet", nan_at_epoch=1), train, val)


def test_empty_training_split_is_an_error(tmp_path):
    from benchmark.registry import create_method

    _, val = _datasets(tmp_path)
    empty = ChunkDataset([], 60, ("diff_normalized",))
    with pytest.raises(TrainingError, match="empty training split"):
        Trainer(_cfg(), tmp_path / "e", seed=0).fit(create_method("test_tinynet"), empty, val)


def test_phases_run_in_order_and_hand_over(tmp_path):
    from benchmark.registry import create_method

    train, val = _datasets(tmp_path)
    m = create_method("test_twophase")
    res = Trainer(_cfg(epochs=2), tmp_path / "p", seed=0).fit(m, train, val)
    assert [h["phase"] for h in res.history] == ["pre", "main", "main"]
    assert m.frozen and not any(p.requires_grad for p in m.aux.parameters())
    # a rerun resumes nothing new: both phases are finished and the hand-over runs again
    m2 = create_method("test_twophase")
    res2 = Trainer(_cfg(epochs=2), tmp_path / "p", seed=0).fit(m2, train, val)
    assert len(res2.history) == 3 and m2.frozen


def test_neural_method_through_runner_same_seed_same_numbers(run_cfg):
    proto = toy_protocol(n_subjects=4, n_frames=180)
    a = run(run_cfg({"name": "test_tinynet", "frames": None, "size": None, "checkpoint": None, "nan_at_epoch": None},
                    protocol=proto, skip_finished=False))
    b = run(run_cfg({"name": "test_tinynet", "frames": None, "size": None, "checkpoint": None, "nan_at_epoch": None},
                    protocol=proto, skip_finished=False))
    assert np.isfinite(a["test/mae_bpm"]) and a == b


def test_chunk_longer_than_record_is_an_error(run_cfg):
    from benchmark.data import ChunkError

    proto = toy_protocol(n_subjects=4, n_frames=40)
    with pytest.raises(ChunkError, match="chunk length 60 is longer than"):
        run(run_cfg({"name": "test_tinynet"}, protocol=proto))


class TinyBNNet(TinyNet):
    def __init__(self, c: int = 3):
        super().__init__(c)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x):
        h = self.drop(torch.relu(self.bn(self.conv(x)))).mean(dim=(3, 4))
        return self.head(h)[:, 0]


@register_method("test_bnnet")
class TinyBNMethod(TinyMethod):
    """TinyNet with a BatchNorm layer (test-only plug-in)."""

    def build_model(self):
        return TinyBNNet(self.in_channels)


def test_precise_bn_recomputes_statistics_and_leaves_training_alone(tmp_path):
    """precise_bn replaces the lagging running mean by the training-set mean of the BN input at the
    final weights, and does not change what is learned (same weights, same RNG stream)."""
    from benchmark.registry import create_method

    train, val = _datasets(tmp_path)
    plain, precise = create_method("test_bnnet"), create_method("test_bnnet")
    Trainer(_cfg(select="last"), tmp_path / "plain", seed=1).fit(plain, train, val)
    Trainer(_cfg(select="last", precise_bn=100), tmp_path / "precise", seed=1).fit(precise, train, val)
    a, b = plain.get_model().state_dict(), precise.get_model().state_dict()
    for k in a:
        if not k.startswith("bn.running") and k != "bn.num_batches_tracked":
            assert torch.equal(a[k], b[k]), k
    model = precise.get_model().eval()
    with torch.no_grad():
        frames = torch.stack([train[i]["frames"] for i in range(len(train))])
        target = model.conv(frames).mean(dim=(0, 2, 3, 4))  # 6 chunks in 3 equal batches: mean of means
    torch.testing.assert_close(b["bn.running_mean"], target, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(a["bn.running_mean"], target, rtol=1e-2, atol=1e-4)  # momentum 0.1 lags
