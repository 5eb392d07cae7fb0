"""Settings a user can predict (issue 16.2, 16.3, 16.9): command line > variant YAML > method preset >
trainer preset, shown with their sources; unknown keys and degenerate values rejected before any data
work; one-line errors from ``rppg-bench run``; safe checkpoint advice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.cli import compose
from benchmark.losses import neg_pearson
from benchmark.method import InputSpec, MethodConfigError, NeuralMethod, read_state_dict
from benchmark.registry import register_method
from benchmark.runner import _plain, resolve_settings, run
from benchmark.settings import COMMAND_LINE, ConfigError, check_config, check_trainer, explicit_keys
from conftest import toy_protocol


def _settings(overrides: list[str]):
    """Resolve settings exactly as ``rppg-bench run OVERRIDES`` does (hydra compose + override keys)."""
    plain = _plain(compose(overrides))
    task = plain.pop("hydra")["overrides"]["task"]
    check_config(plain)
    s = resolve_settings(plain, explicit_keys(task))
    if s.neural:
        check_trainer(s)
    return s


def test_command_line_beats_method_quick_preset():
    # the report's case: physformer's quick preset (then 8 epochs, lr 3e-3) used to win over the command line
    s = _settings(["method=physformer", "trainer=quick", "trainer.epochs=1", "trainer.lr=0.1"])
    assert s.trainer["epochs"] == 1 and s.trainer["lr"] == 0.1
    assert s.sources["trainer.epochs"] == s.sources["trainer.lr"] == COMMAND_LINE
    # what the user did not set still comes from the method preset, then the trainer preset
    assert s.trainer["select"] == "val_mae" and s.sources["trainer.select"] == "physformer quick preset"
    assert s.trainer["optimizer"] == "adamw" and s.sources["trainer.optimizer"] == "trainer preset quick"
    line = s.line()
    assert "epochs=1 (command line)" in line and "lr=0.1 (command line)" in line
    assert "select=val_mae (physformer quick preset)" in line and "\n" not in line


def test_command_line_beats_paper_recipe():
    s = _settings(["method=physformer", "trainer=paper", "trainer.epochs=2", "trainer.optimizer=adamw"])
    assert s.trainer["epochs"] == 2 and s.trainer["optimizer"] == "adamw"
    assert s.trainer["lr"] == 1e-4 and s.sources["trainer.lr"] == "physformer paper recipe"


def test_setting_equal_to_the_trainer_preset_still_wins():
    # trainer.epochs=5 equals quick.yaml's value; it is explicit, so physformer's 6 must not replace it
    s = _settings(["method=physformer", "trainer.epochs=5"])
    assert s.trainer["epochs"] == 5 and s.sources["trainer.epochs"] == COMMAND_LINE


def test_nothing_explicit_keeps_todays_presets():
    quick = _settings(["method=physformer"])
    assert {k: quick.trainer[k] for k in ("epochs", "lr", "select", "batch_size")} == \
        {"epochs": 6, "lr": 3e-3, "select": "val_mae", "batch_size": 2}
    assert quick.sources["trainer.batch_size"] == "physformer quick preset"
    assert (quick.method["frames"], quick.method["size"]) == (64, 64)
    paper = _settings(["method=physformer", "trainer=paper"])
    assert {k: paper.trainer[k] for k in ("optimizer", "lr", "weight_decay", "epochs", "batch_size", "scheduler", "select")} == \
        {"optimizer": "adam", "lr": 1e-4, "weight_decay": 5e-5, "epochs": 10, "batch_size": 4, "scheduler": None, "select": "val_mae"}
    assert paper.method["frames"] is None  # published shape
    pos = _settings(["method=pos"])
    assert not pos.neural and "not used" in pos.line()


def test_user_method_shape_beats_quick_shapes_also_on_a_variant():
    s = _settings(["method=lq_rppg_bits3", "method.frames=32"])
    assert s.method["frames"] == 32 and s.sources["method.frames"] == COMMAND_LINE
    assert s.method["size"] == 64 and s.sources["method.size"] == "lq_rppg quick preset"
    assert s.method["max_bits"] == 3  # the variant's own key


def test_variant_trainer_block_beats_method_preset_not_command_line():
    from benchmark.runner import resolve_settings as resolve

    base = _plain(compose(["method=physformer", "trainer.lr=0.5"]))
    base.pop("hydra")
    base["method"] = {**base["method"], "variant": "physformer_long", "trainer": {"epochs": 20, "lr": 1e-3}, "size": 32}
    check_config(base)
    s = resolve(base, explicit_keys(["trainer.lr=0.5"]))
    assert s.trainer["epochs"] == 20 and s.sources["trainer.epochs"] == "variant physformer_long"
    assert s.trainer["lr"] == 0.5 and s.sources["trainer.lr"] == COMMAND_LINE
    assert s.method["size"] == 32 and s.sources["method.size"] == "variant physformer_long"
    assert s.method["frames"] == 64 and "trainer" not in s.method and "variant" not in s.method


@pytest.mark.parametrize("override, section", [
    ("+trainer.epoch=3", "trainer"),          # a typo used to be ignored silently
    ("+trainer.pinned=[lr]", "trainer"),      # the old undocumented escape hatch is gone
    ("+eval.windows=5", "eval"),
    ("+labels.transform=[]", "labels"),
    ("+preprocess.sise=36", "preprocess"),
    ("+tracking.exp=x", "tracking"),
    ("+paths.ubfc=/data", "paths"),           # the dataset-root key is ubfc_rppg
    ("+sed=3", "top level"),
    ("dataset=ubfc_rppg", "top level"),       # a preprocess option; `run` would ignore it
])
def test_unknown_keys_are_errors_listing_valid_ones(override, section, tmp_path):
    cfg = compose(["method=physformer", override, f"cache_dir={tmp_path}/cache",
                   f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])
    with pytest.raises(ConfigError, match="unknown config key") as exc:
        run(cfg)
    assert ("at the top level" if section == "top level" else f"under {section!r}") in str(exc.value)
    assert "valid: [" in str(exc.value)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "mlflow.db").exists()


def test_unknown_method_key_is_an_error(tmp_path):
    with pytest.raises(MethodConfigError, match=r"unknown config key\(s\) \['drop_out'\]; valid:"):
        run(compose(["method=physformer", "+method.drop_out=0.2", f"cache_dir={tmp_path}/cache"]))
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("override, message", [
    ("trainer.epochs=0", "trainer.epochs must be >= 1, got 0 (set by command line)"),
    ("trainer.epochs=-3", "trainer.epochs must be >= 1"),
    ("trainer.epochs=2.5", "trainer.epochs must be an integer"),
    ("trainer.batch_size=0", "trainer.batch_size must be >= 1"),
    ("trainer.lr=0", "trainer.lr must be > 0"),
    ("trainer.lr=-0.1", "trainer.lr must be > 0"),
    ("trainer.lr=nan", "non-finite number in the config: trainer.lr=nan"),
    ("trainer.weight_decay=inf", "non-finite number in the config: trainer.weight_decay=inf"),
    ("eval.window_s=nan", "non-finite number in the config: eval.window_s=nan"),
    ("trainer.optimizer=sgd", "trainer.optimizer must be one of ['adam', 'adamw'], got 'sgd'"),
    ("trainer.scheduler=cosine", "trainer.scheduler must be one of"),
    ("trainer.select=best", "trainer.select must be one of ['val_loss', 'last', 'val_mae']"),
    ("trainer.threads=0", "trainer.threads must be >= 1"),
    ("seed=-1", "seed must be an integer in [0, 4294967295] (numpy's seed range), got -1"),
    ("seed=4294967296", "seed must be an integer in [0, 4294967295]"),
])
def test_degenerate_configs_rejected_before_any_work(override, message, tmp_path):
    cfg = compose(["method=physformer", override, f"cache_dir={tmp_path}/cache", f"runs_dir={tmp_path}/runs",
                   f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])
    with pytest.raises(ConfigError) as exc:
        run(cfg)
    assert message in str(exc.value)
    assert not any(tmp_path.iterdir()), "a rejected config must not read data, train or open the tracking store"


def test_epochs_zero_from_a_method_preset_names_its_source():
    s = _settings(["method=physformer"])
    s.trainer["epochs"] = 0
    s.sources["trainer.epochs"] = "physformer quick preset"
    with pytest.raises(ConfigError, match=r"trainer.epochs must be >= 1, got 0 \(set by physformer quick preset\)"):
        check_trainer(s)


# -- end to end: the settings are honoured, printed and logged ------------------------------------
class _Net(nn.Module):
    def __init__(self, c: int = 3):
        super().__init__()
        self.conv = nn.Conv3d(c, 2, 3, padding=1)
        self.head = nn.Conv1d(2, 1, 1)

    def forward(self, x):  # (B, C, T, H, W) -> (B, T)
        return self.head(torch.relu(self.conv(x)).mean(dim=(3, 4)))[:, 0]


@register_method("test_settings_net")
class _SettingsNet(NeuralMethod):
    """Tiny net whose quick preset says 3 epochs (test-only plug-in)."""

    input = InputSpec(frames=60, size=16, transforms=("diff_normalized",), label="diff_normalized")
    quick = {"frames": 30, "epochs": 3, "lr": 5e-3}

    @dataclass
    class Config(NeuralMethod.Config):
        pass

    def build_model(self):
        return _Net(self.in_channels)

    def loss(self, out, batch, *, epoch=0, num_epochs=1):
        return neg_pearson(out, batch["label"])


def test_explicit_epochs_are_trained_printed_and_logged(run_cfg, capsys):
    import mlflow

    cfg = run_cfg({"name": "test_settings_net", "frames": None, "size": None, "checkpoint": None},
                  protocol=toy_protocol(n_subjects=4, n_frames=180))
    cfg["trainer"] = {**cfg["trainer"], "quick_shapes": True, "epochs": 1}
    run(cfg, overrides=["method=test_settings_net", "trainer.epochs=1"])
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("trainer (quick): "))
    assert "epochs=1 (command line)" in line and "lr=0.005 (test_settings_net quick preset)" in line
    assert "method.frames=30 (test_settings_net quick preset)" in line
    mlflow.set_tracking_uri(cfg["tracking"]["uri"])
    (r,) = mlflow.search_runs(experiment_names=["test"], output_format="list")
    assert r.data.params["trainer.epochs"] == "1" and r.data.params["trainer.threads"] == "2"
    art = Path(mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path="training.json"))
    assert len(json.loads(art.read_text())["history"]) == 1  # honoured, not only printed
    txt = Path(mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path="settings.txt")).read_text()
    assert any(ln.startswith("trainer.epochs = 1") and ln.endswith("# command line") for ln in txt.splitlines())
    assert any(ln.startswith("trainer.lr = 0.005") and ln.endswith("# test_settings_net quick preset") for ln in txt.splitlines())


def test_chunk_length_checked_before_preprocessing(run_cfg, tmp_path):
    from benchmark.data import ChunkError

    cfg = run_cfg({"name": "test_settings_net"}, protocol=toy_protocol(n_subjects=4, n_frames=40))
    with pytest.raises(ChunkError, match=r"chunk length 60 is longer than 2 record\(s\) of the train split"):
        run(cfg)
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(p.name == "frames.npy" for p in cache.rglob("*")), "nothing preprocessed"


# -- one-line errors, safe checkpoint advice --------------------------------------------------------
def _cli_run(args, monkeypatch, tmp_path, capsys, env=None):
    from benchmark.cli import main

    monkeypatch.setenv("RPPG_BENCH_HYDRA_DIR", str(tmp_path / "hydra"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    rc = main(["run", *args, f"cache_dir={tmp_path}/cache", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])
    return rc, capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (["method=physformer", "trainer.epochs=0"], "error: trainer.epochs must be >= 1, got 0 (set by command line)"),
    (["method=physformer", "trainer.epoch=3"], "error: Could not override 'trainer.epoch'."),
    (["method=physformer", "method.checkpoint=/no/such/file.pth"],
     "error: checkpoint file not found: /no/such/file.pth (method.checkpoint)"),
])
def test_run_errors_print_one_line(args, message, monkeypatch, tmp_path, capsys):
    rc, cap = _cli_run(args, monkeypatch, tmp_path, capsys)
    assert rc != 0
    err = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(message), cap.err
    assert "Traceback" not in cap.err + cap.out
    assert not (tmp_path / "cache").exists(), "rejected before any data work"


def test_run_error_traceback_with_verbose(monkeypatch, tmp_path, capsys):
    rc, cap = _cli_run(["-v", "method=physformer", "trainer.epochs=0"], monkeypatch, tmp_path, capsys)
    assert rc == 1 and "Traceback" in cap.err and cap.err.rstrip().splitlines()[-1].startswith("error: trainer.epochs")
    rc, cap = _cli_run(["method=physformer", "trainer.epochs=0"], monkeypatch, tmp_path, capsys, env={"HYDRA_FULL_ERROR": "1"})
    assert rc == 1 and "Traceback" in cap.err


def test_checkpoint_with_objects_gets_safe_advice(tmp_path):
    import fractions

    path = tmp_path / "ckpt.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "meta": fractions.Fraction(1, 3)}, path)
    with pytest.raises(MethodConfigError) as exc:
        read_state_dict(path, MethodConfigError)
    msg = str(exc.value)
    assert str(path) in msg and "fractions.Fraction" in msg and "state_dict()" in msg
    assert "weights_only=False" not in msg and "weights_only` set to `False" not in msg
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # torch's unsafe advice is not shown
