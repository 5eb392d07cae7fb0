"""Checkpoints keep their shape: the trainer records it, evaluation uses it, a conflicting override is refused."""

from __future__ import annotations

import pytest
import torch

from benchmark.cli import compose
from benchmark.registry import create_method, discover, get_method_class
from benchmark.runner import resolve_settings, run
from benchmark.settings import explicit_keys
from benchmark.shape_guard import ShapeChangeError, checkpoint_shape, guard, wrap
from conftest import toy_protocol


@pytest.fixture
def ckpt(tmp_path):
    """A PhysNet checkpoint written as the trainer writes them, trained (here: built) at 32 frames × 32×32."""
    discover()
    m = create_method("physnet", frames=32, size=32)
    path = tmp_path / "physnet_32.pt"
    torch.save(wrap(m.get_model().state_dict(), m.input_spec(), 30.0), path)
    return path


def _settings(overrides):
    cfg = compose(overrides)
    from benchmark.runner import _plain

    plain = _plain(cfg)
    allow = bool(plain["method"].pop("allow_shape_change", False))
    plain.pop("hydra", None)
    s = resolve_settings(plain, explicit_keys(overrides))
    return guard(s, get_method_class("physnet"), allow, echo=lambda m: None)


def test_checkpoint_is_evaluated_at_its_shape_under_quick(ckpt):
    s = _settings(["method=physnet", f"method.checkpoint={ckpt}", "trainer=quick"])
    assert (s.method["frames"], s.method["size"]) == (32, 32)  # not the quick preset's 64 × 36×36
    assert s.sources["method.frames"].startswith("checkpoint (recorded in the checkpoint")


def test_conflicting_override_is_refused_naming_both_shapes(ckpt):
    with pytest.raises(ShapeChangeError) as exc:
        _settings(["method=physnet", f"method.checkpoint={ckpt}", "method.frames=64"])
    msg = str(exc.value)
    assert "trained at 32 frames × 32×32" in msg and "evaluate it at 64 frames × 36×36" in msg  # size: the quick preset
    assert "method.allow_shape_change=true" in msg


def test_allow_shape_change_lets_the_override_through(ckpt):
    s = _settings(["method=physnet", f"method.checkpoint={ckpt}", "method.frames=64", "method.allow_shape_change=true"])
    assert s.method["frames"] == 64 and "allow_shape_change" not in s.method


def test_external_checkpoint_gets_the_reference_shape(tmp_path):
    discover()
    m = create_method("physnet")
    path = tmp_path / "toolbox.pth"
    torch.save(m.get_model().state_dict(), path)  # a bare state dict, as rPPG-Toolbox publishes
    shape, source = checkpoint_shape(path, get_method_class("physnet"))
    assert (shape["frames"], shape["size"]) == (128, 72) and source.startswith("external checkpoint")


def test_run_evaluates_the_checkpoint_at_its_shape(ckpt, run_cfg, capsys):
    proto = toy_protocol(n_subjects=2, n_frames=96)
    proto["splits"] = {"test": [{"dataset": "toy"}]}
    cfg = run_cfg({"name": "physnet", "checkpoint": str(ckpt)}, proto, preprocess={"size": None})
    cfg["trainer"]["quick_shapes"] = True  # trainer=quick: the preset would say 64 × 36×36
    metrics = run(cfg)
    assert "test/mae_bpm" in metrics
    assert "evaluated at its trained shape 32 frames × 32×32" in capsys.readouterr().out


def test_trainer_records_the_input_spec(run_cfg, tmp_path):
    cfg = run_cfg({"name": "physnet", "frames": 32, "size": 32}, toy_protocol(n_subjects=4, n_frames=64),
                  preprocess={"size": None})
    cfg["trainer"].update(epochs=1, max_batches_per_epoch=1, precise_bn=0)
    run(cfg)
    finals = list((tmp_path / "runs").rglob("phase_main_final.pt"))
    assert finals
    obj = torch.load(finals[0], map_location="cpu", weights_only=True)
    assert obj["input_spec"]["frames"] == 32 and obj["input_spec"]["size"] == 32 and obj["input_spec"]["fps"] == 30.0
    assert checkpoint_shape(finals[0], get_method_class("physnet"))[1] == "recorded in the checkpoint"
