"""Label-quality lab: report helpers on tiny labels, experiment grid, MLflow aggregation + Wilcoxon,
an end-to-end tiny sweep through the runner, and the CLI argument parsing."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from benchmark import label_lab as lab
from benchmark.losses import neg_pearson
from benchmark.method import InputSpec, NeuralMethod
from benchmark.registry import register_method
from conftest import toy_protocol

FPS = 30.0


def _ppg(hr_bpm: float, n: int, phase: float = 0.0) -> np.ndarray:
    """A clean PPG-like label: fundamental + 2nd harmonic + a slow respiratory baseline."""
    t = np.arange(n) / FPS
    f = hr_bpm / 60.0
    return (np.sin(2 * np.pi * f * t + phase) + 0.4 * np.sin(4 * np.pi * f * t + phase + 0.8)
            + 0.2 * np.sin(2 * np.pi * 0.25 * t))


@pytest.fixture(scope="module")
def quantizers() -> lab.QuantizerSet:
    train = [_ppg(hr, 600, ph) for hr, ph in ((62, 0.1), (75, 1.0), (88, 2.0), (101, 0.5))]
    return lab.QuantizerSet.fit(train, FPS, lab.BITS, learned=True, steps=4, seed=0)


# ------------------------------------------------------------------------------------------------
# report helpers
# ------------------------------------------------------------------------------------------------
def test_quantized_labels_take_at_most_2_pow_b_values(quantizers):
    noisy = lab.noisy_label(_ppg(70, 450), FPS, 2, seed=0, record_id="r0")
    versions = lab.label_versions(noisy, FPS, quantizers)
    for b in lab.BITS:
        for kind in ("lloyd", "learned"):
            whole, chunks = versions[f"{kind}_b{b}"]
            assert whole.shape == noisy.shape and chunks.shape[1] == lab.CHUNK
            assert len(np.unique(whole)) <= 2**b, (kind, b)  # one codebook for the whole record
    # the unquantized modes are continuous
    assert len(np.unique(versions["bp_zscore"][0])) > 100
    assert len(np.unique(versions["lloyd_b5"][0])) > 8  # 5 bits really uses more than 3 bits' levels


def test_quantizer_sqnr_rises_with_bits(quantizers):
    rows = pd.DataFrame(lab.fidelity_rows(lab.label_versions(_ppg(80, 900), FPS, quantizers), _ppg(80, 900), FPS))
    sq = [rows[rows.version == f"lloyd_b{b}"]["quant_sqnr_db"].mean() for b in lab.BITS]
    assert all(b > a + 2.0 for a, b in zip(sq, sq[1:])), sq  # Lloyd-Max: ≈ 5–6 dB per bit
    assert rows[rows.version == "raw"]["quant_sqnr_db"].isna().all()


def test_noisy_labels_are_further_from_truth_than_clean(quantizers):
    lloyd_only = lab.QuantizerSet(quantizers.lloyd, {})

    def mean_r(sev: int, version: str) -> float:
        rs = []
        for i, hr in enumerate((64, 77, 95)):
            clean = _ppg(hr, 900, phase=i)
            noisy = lab.noisy_label(clean, FPS, sev, seed=3, record_id=f"r{i}")
            rows = lab.fidelity_rows(lab.label_versions(noisy, FPS, lloyd_only), clean, FPS)
            rs += [r["pearson"] for r in rows if r["version"] == version]
        return float(np.mean(rs))

    assert mean_r(0, "bandpassed") == pytest.approx(1.0, abs=1e-9)  # the truth's own cardiac component
    for version in ("raw", "bandpassed", "lloyd_b3"):
        r0, r1, r3 = mean_r(0, version), mean_r(1, version), mean_r(3, version)
        assert r0 > r1 > r3, (version, r0, r1, r3)


def test_si_sqnr_is_scale_invariant_capped_and_nan_on_constant():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 160))
    y = x + 0.3 * rng.standard_normal((3, 160))
    np.testing.assert_allclose(lab.si_sqnr_db(7 * y - 2, x), lab.si_sqnr_db(y, x), rtol=1e-9)
    r = lab.pearson_rows(y, x)
    np.testing.assert_allclose(lab.si_sqnr_db(y, x), 10 * np.log10(r**2 / (1 - r**2)), rtol=1e-9)
    assert float(lab.si_sqnr_db(x[0], x[0])) == lab.SQNR_CAP_DB
    assert np.isnan(lab.si_sqnr_db(np.ones(160), x[0]))


def test_window_rows_hr_error_zero_for_truth_and_sqis_present(quantizers):
    clean = _ppg(72, 600)
    versions = lab.label_versions(clean, FPS, lab.QuantizerSet(quantizers.lloyd, {}))
    rows = pd.DataFrame(lab.window_rows(versions, FPS, truth=clean, quality=("skewness",)))
    assert set(rows.window) == {0, 1}
    assert rows[rows.version == "raw"]["hr_abs_err"].max() < 1e-9  # raw at severity 0 is the truth
    assert rows[rows.version == "lloyd_b3"]["hr_abs_err"].max() < 2.0
    assert {"skewness", "snr_db", "d_spectrum_peaks_bpm", "d_raw_peaks_bpm"} <= set(rows.columns)


def test_read_heartpy_csv_formats(tmp_path):
    from protocols.base import DatasetFormatError

    x = np.round(500 + 50 * _ppg(70, 1000))
    (tmp_path / "plain.csv").write_text("\n".join(str(int(v)) for v in x))
    t = np.arange(1000) * 8.0  # 125 Hz ms timer
    pd.DataFrame({"timer": t, "hr": x}).to_csv(tmp_path / "timer.csv", index=False)
    stamps = pd.Timestamp("2020-01-01 10:00:00") + pd.to_timedelta(np.arange(1000) * 20, unit="ms")  # 50 Hz
    pd.DataFrame({"datetime": stamps.strftime("%Y-%m-%d %H:%M:%S.%f"), "hr": x}).to_csv(tmp_path / "dt.csv", index=False)
    assert lab.read_heartpy_csv(tmp_path / "plain.csv")[1] == 100.0
    assert lab.read_heartpy_csv(tmp_path / "timer.csv")[1] == pytest.approx(1000 / 7992 * 1000)
    assert lab.read_heartpy_csv(tmp_path / "dt.csv")[1] == pytest.approx(1000 / 19.98)
    pd.DataFrame({"when": t, "hr": x}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DatasetFormatError, match="bad.csv"):
        lab.read_heartpy_csv(tmp_path / "bad.csv")
    y, fs = lab.resample_to(x, 100.0)
    assert fs == 30.0 and len(y) == 300


def test_heartpy_example_rates_match_heartpy_docs():
    folder = lab.heartpy_dir()
    if folder is None:
        pytest.skip("heartpy not installed")
    rates = {p.name: lab.read_heartpy_csv(p)[1] for p in sorted(folder.glob("*.csv"))}
    assert rates["data.csv"] == 100.0
    assert rates["data2.csv"] == pytest.approx(116.996, abs=1e-3)  # heartpy get_samplerate_mstimer doctest
    assert rates["data3.csv"] == pytest.approx(100.42, abs=1e-2)  # heartpy get_samplerate_datetime doctest


# ------------------------------------------------------------------------------------------------
# experiment grid and argument parsing
# ------------------------------------------------------------------------------------------------
def test_labels_node_and_grid():
    node = lab.labels_node("quantized_b2", 3)
    assert node["name"] == "quantized_b2_s3"
    assert node["transforms"] == [{"name": "label_noise", "severity": 3}, {"name": "quantize", "bits": 2, "kind": "lloyd"}]
    assert lab.parse_labels_name(node["name"]) == ("quantized_b2", 3)
    with pytest.raises(lab.LabLabError, match="unknown label mode"):
        lab.mode_transforms("quantized_b9")
    with pytest.raises(lab.LabLabError):
        lab.parse_labels_name("clean")
    grid = lab.build_grid(["physnet", "lq_rppg_raw"], [0, 3], ["raw", "bandpassed", "quantized_b3"], [0, 1])
    assert len(grid) == 2 * (2 * 3 + 2 * 1)  # LQ variants only get lq_modes (raw)
    assert {c.mode for c in grid if c.alias == "lq_rppg_raw"} == {"raw"}
    assert [c.seed for c in grid] == sorted(c.seed for c in grid)  # seed-major


def test_parse_args_types_and_errors():
    d = {"n": 3, "x": 0.5, "flag": False, "seeds": (0,), "modes": ("raw",), "name": ""}
    got = lab.parse_args(["n=5", "x=2", "flag=yes", "seeds=1,2", "modes=raw,bandpassed", "name=foo"], d)
    assert got == {"n": 5, "x": 2.0, "flag": True, "seeds": (1, 2), "modes": ("raw", "bandpassed"), "name": "foo"}
    with pytest.raises(lab.LabLabError, match="unknown argument 'nn'.*valid"):
        lab.parse_args(["nn=1"], d)
    with pytest.raises(lab.LabLabError, match="expected an integer"):
        lab.parse_args(["n=abc"], d)
    with pytest.raises(lab.LabLabError, match="not key=value"):
        lab.parse_args(["n"], d)
    got = lab.parse_args(["n=1", "trainer.epochs=1"], d, passthrough=True)
    assert got["overrides"] == ("trainer.epochs=1",)
    r = lab.resolve_experiment(lab.parse_args(["methods=physnet", "severities=0,3", "trainer.epochs=1"],
                                              lab.EXPERIMENT_DEFAULTS, passthrough=True))
    assert r["methods"] == ("physnet",) and r["severities"] == (0, 3) and r["seeds"] == lab.SIZES["quick"]["seeds"]
    assert r["overrides"][-1] == "trainer.epochs=1" and r["experiment"] == "label-noise-quick"
    with pytest.raises(lab.LabLabError, match="seed= is set by the experiment grid"):
        lab.resolve_experiment(lab.parse_args(["seed=3"], lab.EXPERIMENT_DEFAULTS, passthrough=True))
    with pytest.raises(lab.LabLabError, match="size must be"):
        lab.resolve_experiment(lab.parse_args(["size=huge"], lab.EXPERIMENT_DEFAULTS, passthrough=True))


def test_cli_dispatch_and_bad_arguments(capsys):
    from benchmark.cli import main

    assert main(["label-experiment", "dry=true", "methods=physnet", "severities=0,3", "modes=raw,quantized_b3", "seeds=0"]) == 0
    out = capsys.readouterr().out
    assert "quantized_b3_s3" in out and "4 runs" in out
    assert main(["label-report", "bogus=1"]) == 2
    assert "unknown argument 'bogus'" in capsys.readouterr().err
    assert main(["label-report", "help"]) == 0 and "n_records" in capsys.readouterr().out


def test_cell_config_composes_labels_node():
    cell = lab.Cell("lq_rppg_raw", 2, "raw", 1)
    cfg = lab.cell_config(cell, ["protocol=synthetic_intra", "trainer=quick"], "label-noise-test")
    assert cfg.method.name == "lq_rppg" and cfg.method.labels == "raw"
    assert cfg.labels.name == "raw_s2" and list(cfg.labels.transforms)[0]["severity"] == 2
    assert cfg.seed == 1 and cfg.tracking.experiment == "label-noise-test"


# ------------------------------------------------------------------------------------------------
# aggregation + Wilcoxon on a fabricated MLflow store
# ------------------------------------------------------------------------------------------------
def _log_run(method: str, labels: str, seed: int, errors: dict[str, float], *, params: dict | None = None,
             status: str = "FINISHED") -> str:
    import mlflow

    from benchmark import tracking

    preds = pd.DataFrame([{"record": r, "window": w, "dataset": "synthetic_lab", "hr_ref": 70.0,
                           "hr_pred": 70.0 + (e if w == 0 else -e)} for r, e in errors.items() for w in (0, 1)])
    tags = {"method": method, "labels": labels, "seed": str(seed), "protocol": "p", "config_hash": f"{method}{labels}{seed}"}
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params({"method.name": method, **(params or {})})
        mlflow.log_metric("test/mae_bpm", float(np.mean(list(errors.values()))))
        tracking.log_dataframe(preds, "predictions.csv")
    if status != "FINISHED":
        mlflow.tracking.MlflowClient().set_terminated(run.info.run_id, status=status)
    return run.info.run_id


@pytest.fixture
def fabricated_store(tmp_path):
    from benchmark import tracking

    tracking.setup(f"sqlite:///{tmp_path}/mlflow.db", "labexp", str(tmp_path / "art"))
    rng = np.random.default_rng(0)
    records = [f"s{i:02d}" for i in range(8)]
    truth: dict[tuple, dict[str, float]] = {}
    # an older finished run of a cell that is run again below: the newest must win
    _log_run("physnet", "raw_s3", 0, {r: 50.0 for r in records})
    time.sleep(0.01)
    for seed in (0, 1):
        for sev in (0, 3):
            base = {r: float(rng.uniform(1, 3) + 4 * sev) for r in records}
            for mode, shift in (("raw", 0.0), ("quantized_b3", -2.0 * (sev > 0)), ("bandpassed", 0.0)):
                errs = {r: max(0.0, e + shift + float(rng.normal(0, 0.3))) for r, e in base.items()}
                truth[("physnet", mode, sev, seed)] = errs
                _log_run("physnet", f"{mode}_s{sev}", seed, errs)
            # LQ-rPPG vs its raw-label backbone: same method tag, told apart by params
            q = {r: e + 1.0 for r, e in base.items()}
            truth[("lq_rppg", "raw", sev, seed)] = q
            _log_run("lq_rppg", f"raw_s{sev}", seed, q, params={"method.labels": "quantized"})
            truth[("lq_rppg_raw", "raw", sev, seed)] = base
            _log_run("lq_rppg", f"raw_s{sev}", seed, base, params={"method.labels": "raw"})
    # noise the aggregation must ignore: a failed run and an older run of a cell that was rerun
    _log_run("physnet", "raw_s3", 0, {r: 99.0 for r in records}, status="FAILED")
    return truth, records


def test_collect_and_aggregate_fabricated_store(fabricated_store):
    truth, records = fabricated_store
    grid = lab.build_grid(["physnet", "lq_rppg", "lq_rppg_raw"], [0, 3], ["raw", "bandpassed", "quantized_b3"], [0, 1])
    runs = lab.collect_runs("labexp", grid)
    assert len(runs) == len(grid) == 2 * 2 * (3 + 1 + 1)
    assert set(runs.alias) == {"physnet", "lq_rppg", "lq_rppg_raw"}
    errors = lab.load_errors(runs)
    assert len(errors) == len(grid) * len(records)
    got = errors.set_index(["alias", "mode", "severity", "seed", "record"])["abs_err"]
    for (alias, mode, sev, seed), errs in truth.items():
        for r, e in errs.items():
            assert got[(alias, mode, sev, seed, r)] == pytest.approx(e)  # |±e| averaged over 2 windows
    summary = lab.summarize_cells(errors)
    row = summary[(summary.alias == "physnet") & (summary["mode"] == "quantized_b3") & (summary.severity == 3)].iloc[0]
    expect = np.mean([e for s in (0, 1) for e in truth[("physnet", "quantized_b3", 3, s)].values()])
    assert row.mae_bpm == pytest.approx(expect) and row.ci_lo < row.mae_bpm < row.ci_hi and row.n_units == 16

    tests = lab.mode_tests(errors)
    t = tests[(tests.comparison == "mode") & (tests.alias == "physnet") & (tests.severity == 3) & (tests.a == "quantized_b3")].iloc[0]
    d = [truth[("physnet", "quantized_b3", 3, s)][r] - truth[("physnet", "raw", 3, s)][r] for s in (0, 1) for r in records]
    assert t.n == 16 and t.mean_diff == pytest.approx(np.mean(d))
    assert t.p == pytest.approx(stats.wilcoxon(d).pvalue) and t.p < 0.01 and t.ci_hi < 0
    m = tests[(tests.comparison == "method") & (tests.severity == 3)].iloc[0]
    assert m.a == "lq_rppg" and m.b == "lq_rppg_raw" and m.mean_diff == pytest.approx(1.0)
    assert tests.q_bh.between(0, 1).all() and (tests.q_bh >= tests.p - 1e-12).all()

    lines = lab.headline(summary, tests)
    text = "\n".join(lines)
    assert "**physnet**, severity 3: `quantized_b3` wins" in text and "significant at 0.05" in text
    assert "lq_rppg vs lq_rppg_raw" in text and "`lq_rppg_raw` lower" in text


def test_analyze_writes_markdown_and_figure(fabricated_store, tmp_path):
    r = lab.resolve_experiment(lab.parse_args(
        ["methods=physnet,lq_rppg,lq_rppg_raw", "severities=0,3", "modes=raw,bandpassed,quantized_b3", "seeds=0,1",
         "experiment=labexp", f"out={tmp_path}/res", f"figures={tmp_path}/res/figures"],
        lab.EXPERIMENT_DEFAULTS, passthrough=True))
    res = lab.analyze_experiment(r, log=lambda s: None)
    md = res["markdown"].read_text()
    assert "## Headline" in md and "quantized_b3" in md and "| physnet / raw |" in md
    assert res["figure"].exists() and res["figure"].stat().st_size > 10_000
    assert (tmp_path / "res" / "figures" / "label_noise_lq_vs_raw.png").exists()
    assert (tmp_path / "res" / "label_noise.csv").exists()


def test_pooled_mode_test_over_methods():
    rows = []
    rng = np.random.default_rng(1)
    for alias in ("a", "b"):
        for seed in (0, 1):
            for rec in range(5):
                e = float(rng.uniform(5, 10))
                rows += [{"alias": alias, "mode": "raw", "severity": 3, "seed": seed, "dataset": "d", "record": f"r{rec}", "abs_err": e},
                         {"alias": alias, "mode": "bandpassed", "severity": 3, "seed": seed, "dataset": "d", "record": f"r{rec}",
                          "abs_err": e - 1.0 - 0.1 * rec}]
    errors = pd.DataFrame(rows)
    tests = lab.mode_tests(errors)
    pooled = tests[tests.comparison == "pooled"].iloc[0]
    assert pooled.n == 20 and pooled.mean_diff == pytest.approx(-1.2) and pooled.p < 1e-4
    assert len(tests[tests.comparison == "mode"]) == 2  # a and b separately, n = 10 each
    text = "\n".join(lab.headline(lab.summarize_cells(errors), tests))
    assert "**Pooled over a, b**, severity 3: `bandpassed` has the lowest MAE" in text


# ------------------------------------------------------------------------------------------------
# end to end: a tiny neural method through the runner, 2 severities × 2 modes × 1 seed, 1 epoch
# ------------------------------------------------------------------------------------------------
class _LabNet(nn.Module):
    def __init__(self, c: int = 3):
        super().__init__()
        self.conv = nn.Conv3d(c, 4, (3, 3, 3), padding=1)
        self.head = nn.Conv1d(4, 1, 1)

    def forward(self, x):  # (B, C, T, H, W) -> (B, T)
        return self.head(torch.relu(self.conv(x)).mean(dim=(3, 4)))[:, 0]


@register_method("test_lablab_net")
class LabNet(NeuralMethod):
    """Tiny 3-D conv net (test-only plug-in for the label experiment)."""

    input = InputSpec(frames=60, size=16, transforms=("diff_normalized",), label="standardized")

    @dataclass
    class Config(NeuralMethod.Config):
        pass

    def build_model(self):
        return _LabNet(self.in_channels)

    def loss(self, out, batch, *, epoch=0, num_epochs=1):
        return neg_pearson(out, batch["label"])


def test_tiny_sweep_end_to_end_and_rerun_skips(run_cfg, tmp_path):
    import mlflow

    proto = toy_protocol(n_subjects=4, n_frames=180)
    trainer = {"name": "quick", "quick_shapes": False, "epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 1e-3,
               "scheduler": "onecycle", "select": "last", "device": "cpu", "amp": "none"}

    def make(cell):
        return run_cfg({"name": "test_lablab_net", "frames": None, "size": None, "checkpoint": None}, protocol=proto,
                       trainer=trainer, labels=lab.labels_node(cell.mode, cell.severity), seed=cell.seed,
                       eval={"window_s": 3.0, "overlap": 0.0, "band": [0.75, 2.5], "n_boot": 50})

    grid = lab.build_grid(["test_lablab_net"], [0, 3], ["raw", "quantized_b2"], [0])
    t0 = time.time()
    status = lab.run_grid(grid, make, log=lambda s: None)
    first = time.time() - t0
    assert [s["status"] for s in status] == ["ok"] * 4, status
    runs = lab.collect_runs("test", grid)
    assert len(runs) == 4 and set(runs["labels"]) == {"raw_s0", "quantized_b2_s0", "raw_s3", "quantized_b2_s3"}
    # the label specs reached the run: its logged identity carries noise + mode + the method's own label
    p = mlflow.get_run(runs[runs.labels == "quantized_b2_s3"].run_id.iloc[0]).data.params["labels"]
    assert '"label_noise"' in p and '"severity": 3' in p and '"quantize"' in p and p.rstrip().endswith('"standardized"]')
    errors = lab.load_errors(runs)
    assert len(errors) == 4 and errors.abs_err.notna().all()
    # relaunching the sweep skips every finished cell (config hash), adding no run
    status2 = lab.run_grid(grid, make, log=lambda s: None)
    assert [s["status"] for s in status2] == ["ok"] * 4
    assert len(mlflow.search_runs(experiment_names=["test"])) == 4
    assert sum(s["seconds"] for s in status2) < first
