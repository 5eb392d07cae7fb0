"""Train once, test on many: protocols with the same training data share one training (issue 10.3:
``synthetic_cross`` trains on ``train_mix`` once and tests on three tiers)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from torch import nn

from benchmark.losses import neg_pearson
from benchmark.method import InputSpec, NeuralMethod
from benchmark.registry import register_method
from benchmark.runner import run
from conftest import toy_protocol


class _Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv3d(c, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean(dim=(1, 3, 4))


@register_method("shared_train_tiny")
class _Tiny(NeuralMethod):
    """Tiny conv net (test-only)."""

    input = InputSpec(frames=60, size=16, transforms=("diff_normalized",), label="diff_normalized")

    def build_model(self):
        return _Net(self.in_channels)

    def loss(self, out, batch, *, epoch=0, num_epochs=1):
        return neg_pearson(out, batch["label"])


def _protocol(name: str, test_seed: int, train_end: float = 0.5) -> dict:
    p = toy_protocol(n_subjects=4, n_frames=180)
    p["name"] = name
    p["datasets"]["other"] = {"name": "toy", "n_subjects": 2, "n_frames": 180, "seed": test_seed}
    p["splits"]["train"] = [{"dataset": "toy", "begin": 0.0, "end": train_end}]
    p["splits"]["test"] = [{"dataset": "other"}]
    return p


def _tags(cfg: dict, name: str) -> dict:
    mlflow.set_tracking_uri(cfg["tracking"]["uri"])
    runs = mlflow.search_runs(experiment_names=[cfg["tracking"]["experiment"]], filter_string=f"tags.protocol = '{name}'",
                              output_format="list")
    assert len(runs) == 1
    return runs[0]


@pytest.mark.usefixtures("one_thread")
def test_protocols_with_the_same_training_data_train_once(run_cfg, tmp_path):
    method = {"name": "shared_train_tiny", "frames": None, "size": None, "checkpoint": None}
    trainer = {"name": "quick", "quick_shapes": False, "epochs": 2, "batch_size": 2, "device": "cpu"}
    cfg_a = run_cfg(method, _protocol("p_a", 7), trainer=trainer)
    cfg_b = run_cfg(method, _protocol("p_b", 9), trainer=trainer)
    run(cfg_a)
    shared = run(cfg_b)
    trained = sorted(p.name for p in Path(cfg_a["runs_dir"]).iterdir() if p.is_dir())  # beside each: its .lock file
    assert len(trained) == 1 and trained[0].startswith("train-"), trained  # one training for two protocols

    a, b = _tags(cfg_a, "p_a"), _tags(cfg_b, "p_b")
    assert a.data.tags["train_hash"] == b.data.tags["train_hash"] == trained[0][len("train-"):]
    assert a.data.tags["config_hash"] != b.data.tags["config_hash"]  # two runs, two test sets
    info_b = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=b.info.run_id, artifact_path="training.json")).read_text())
    assert info_b["resumed_from"] is not None  # b loaded a's finished training instead of training again

    # what b evaluated is exactly the model b would have trained on its own
    alone = run(run_cfg(method, _protocol("p_b", 9), trainer=trainer, runs_dir=str(tmp_path / "runs_alone"),
                        tracking={"uri": f"sqlite:///{tmp_path}/alone.db", "experiment": "alone", "artifacts": str(tmp_path / "art2")}))
    assert alone == shared

    # other training data → another training
    run(run_cfg(method, _protocol("p_c", 9, train_end=0.25), trainer=trainer))
    assert len([p for p in Path(cfg_a["runs_dir"]).iterdir() if p.is_dir()]) == 2
    assert _tags(cfg_a, "p_c").data.tags["train_hash"] != a.data.tags["train_hash"]
