"""Whole runs on a real loader's on-disk layout (``folder``): an edited label is re-preprocessed, re-run
and scored; untouched data reuses the cache and is skipped; ``on_error=skip`` goes on past bad files and
lists them; ``no_face=skip_record`` leaving nothing says why (issue 16, items 1, 8, 9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import write_video

from protocols.base import DatasetFormatError

FPS, N = 30.0, 300


def _pulse_video(hr_bpm: float, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pulse = np.sin(2 * np.pi * hr_bpm / 60 * np.arange(N) / FPS)
    base = np.array([170.0, 115.0, 95.0]) + rng.normal(0, 3, size=(size, size, 3))
    frames = base[None] * (1 - 0.012 * np.array([0.33, 0.77, 0.53]) * pulse[:, None, None, None])
    return np.clip(np.rint(frames + rng.normal(0, 0.4, frames.shape)), 0, 255).astype(np.uint8)


def _label(hr_bpm: float) -> str:
    """10 s of 50-Hz PPG as a fixed-width CSV: labels of any rate have the same byte size."""
    t = np.arange(0, N / FPS, 0.02)
    return "time,ppg\n" + "\n".join(f"{a:06.3f},{np.sin(2 * np.pi * hr_bpm / 60 * a - 1.0):+.5f}" for a in t) + "\n"


def _recording(root: Path, name: str, hr: float, seed: int = 0) -> None:
    write_video(root / f"{name}.avi", _pulse_video(hr, seed=seed), FPS)
    (root / f"{name}.csv").write_text(_label(hr))


def _protocol(root: Path) -> dict:
    return {"name": "mine", "datasets": {"f": {"name": "folder", "root": str(root)}}, "splits": {"test": [{"dataset": "f"}]}}


def _cfg(run_cfg, root: Path, **over) -> dict:
    return run_cfg({"name": "pos"}, _protocol(root), preprocess={"size": 16, "no_face": "full_frame"},
                   eval={"window_s": 10.0, "overlap": 0.0, "band": [0.75, 2.5], "n_boot": 0}, **over)


def _runs(cfg: dict) -> list:
    import mlflow

    mlflow.set_tracking_uri(cfg["tracking"]["uri"])
    return mlflow.search_runs(experiment_names=[cfg["tracking"]["experiment"]], output_format="list",
                              order_by=["attributes.start_time ASC"])


def test_edited_label_is_repreprocessed_rerun_and_scored_untouched_data_is_skipped(tmp_path, run_cfg, capsys):
    from benchmark.runner import run
    from protocols.preprocess import load_cached

    root = tmp_path / "data"
    _recording(root, "me", 72.0)
    cfg = _cfg(run_cfg, root)
    first = run(cfg)
    assert first["test/mae_bpm"] < 2.0  # the video pulses at 72 bpm, so does the label
    (meta,) = (tmp_path / "cache").glob("*/*/me/meta.json")
    inode = (meta.parent / "frames.npy").stat().st_ino

    capsys.readouterr()
    assert run(cfg) == first and "[skip]" in capsys.readouterr().out  # untouched: skipped
    assert len(_runs(cfg)) == 1

    label = root / "me.csv"
    st = label.stat()
    label.write_text(_label(96.0))  # another signal, same size; mtime restored: only the content differs
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (label.stat().st_size, label.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    edited = run(cfg)
    assert "[skip]" not in capsys.readouterr().out and len(_runs(cfg)) == 2  # not skipped as finished
    assert abs(edited["test/mae_bpm"] - 24.0) < 2.0  # scored against the new 96-bpm label
    rec = load_cached(meta.parent)
    t = np.arange(N) / FPS
    np.testing.assert_allclose(rec.ppg, np.sin(2 * np.pi * 96 / 60 * t - 1.0), atol=0.02)  # cache rebuilt

    os.utime(root / "me.avi")  # touched, not edited: same fingerprint
    assert run(cfg) == edited and "[skip]" in capsys.readouterr().out and len(_runs(cfg)) == 2
    assert json.loads(meta.read_text())["source_fingerprint"] and (meta.parent / "frames.npy").stat().st_ino != inode


def test_on_error_skip_goes_on_lists_failed_records_and_fails_the_run(tmp_path, run_cfg):
    import mlflow

    from benchmark.runner import run
    from protocols.preprocess import RecordsFailedError

    root = tmp_path / "data"
    for k, (name, hr) in enumerate((("a", 66.0), ("b", 84.0), ("badlabel", 70.0), ("truncated", 70.0))):
        _recording(root, name, hr, seed=k)
    (root / "badlabel.csv").write_text("time,ppg\n0.0,1.0\n0.02,oops\n")
    video = (root / "truncated.avi").read_bytes()
    (root / "truncated.avi").write_bytes(video[: len(video) // 2])  # fails while frames are decoded

    with pytest.raises(DatasetFormatError, match=r"badlabel\.csv: non-numeric value 'oops'"):
        run(_cfg(run_cfg, root))  # default on_error=raise: the first bad file stops the run
    cfg = _cfg(run_cfg, root, on_error="skip")
    with pytest.raises(RecordsFailedError) as err:
        run(cfg)
    assert sorted(err.value.failed) == ["f/badlabel", "f/truncated"]
    assert "badlabel.csv" in err.value.failed["f/badlabel"] and "truncated.avi" in err.value.failed["f/truncated"]
    assert "f/truncated" in str(err.value) and "f/badlabel" in str(err.value)
    last = _runs(cfg)[-1]
    assert last.info.status == "FAILED"  # never taken for a finished run by the leaderboard or the skip check
    assert last.data.metrics["test/n_records"] == 2 and last.data.metrics["test/mae_bpm"] < 3.0  # good records scored
    listed = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=last.info.run_id, artifact_path="failed_records.json",
                                                                  dst_path=str(tmp_path / "dl"))).read_text())
    assert listed == err.value.failed
    with pytest.raises(ValueError, match="on_error must be one of"):
        run(_cfg(run_cfg, root, on_error="ignore"))


def test_no_face_skip_record_with_nothing_left_says_which_and_why(tmp_path, run_cfg):
    from benchmark.runner import run
    from protocols.preprocess import NoRecordsError

    root = tmp_path / "data"
    for k, name in enumerate(("wall1", "wall2")):  # textures, no face for the Haar cascade
        _recording(root, name, 70.0, seed=k)
    cfg = _cfg(run_cfg, root)
    cfg["preprocess"] = {"size": 16, "no_face": "skip_record"}
    with pytest.raises(NoRecordsError, match=r"test split.*2 skipped because no face was found \(no_face=skip_record\): wall1, wall2"):
        run(cfg)
