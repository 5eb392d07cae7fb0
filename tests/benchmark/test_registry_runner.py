"""A method defined here (not in methods/) runs through the normal runner: no core edit needed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from benchmark.method import MethodConfigError, UnsupervisedMethod
from benchmark.registry import create_method, list_methods, register_method
from benchmark.runner import run
from benchmark.signal import rgb_traces


@register_method("throwaway_green_mean")
class ThrowawayGreen(UnsupervisedMethod):
    """Mean of the green channel (test-only plug-in)."""

    @dataclass
    class Config:
        invert: bool = False

    def predict(self, frames, fps):
        g = rgb_traces(frames)[:, 1]
        return -g if self.cfg.invert else g


def test_plugin_registered_and_listed():
    assert "throwaway_green_mean" in list_methods()
    assert "throwaway_green_mean" in list_methods("throwaway_*")
    m = create_method("throwaway_green_mean", invert=True)
    assert m.cfg.invert is True


def test_unknown_method_lists_valid_names():
    with pytest.raises(KeyError, match="valid: .*throwaway_green_mean"):
        create_method("no_such_method")


def test_unknown_config_key_is_rejected():
    with pytest.raises(MethodConfigError, match="unknown config key.*'bogus'.*valid"):
        create_method("throwaway_green_mean", bogus=1)


def test_plugin_runs_through_runner_and_recovers_hr(run_cfg):
    cfg = run_cfg({"name": "throwaway_green_mean"})
    m = run(cfg)
    assert m["test/mae_bpm"] < 1.0, m
    assert m["test/n"] >= 2
    # same config again → skipped, same metrics returned from MLflow
    m2 = run(cfg)
    assert m2["test/mae_bpm"] == m["test/mae_bpm"]


def test_new_data_version_reruns_a_finished_config(run_cfg, monkeypatch, capsys):
    """A loader whose output changed (``Loader.version``, e.g. the synthetic generator's) must not be
    answered from a finished run of the old data."""
    from conftest import ToyLoader

    cfg = run_cfg({"name": "throwaway_green_mean"})
    run(cfg)
    run(cfg)
    assert capsys.readouterr().out.count("[skip]") == 1
    monkeypatch.setattr(ToyLoader, "version", 2, raising=False)
    run(cfg)
    assert "[skip]" not in capsys.readouterr().out


def test_same_seed_same_metrics(run_cfg):
    a = run(run_cfg({"name": "throwaway_green_mean"}, skip_finished=False))
    b = run(run_cfg({"name": "throwaway_green_mean"}, skip_finished=False))
    assert a == b


def test_nan_label_rejected(run_cfg):
    from conftest import toy_protocol

    from protocols.base import DatasetFormatError

    with pytest.raises(DatasetFormatError, match="NaN"):
        run(run_cfg({"name": "throwaway_green_mean"}, protocol=toy_protocol(nan_label=True)))
