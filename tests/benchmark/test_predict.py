"""``rppg-bench predict`` on tiny videos written here: outputs, bad input per file, live path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.predict import PredictConfig, build_predict_method, main, predict_live

FPS = 30.0


def _write_avi(path: Path, frames: np.ndarray, fps: float = FPS) -> Path:
    """MJPG AVI via OpenCV (RGB frames in)."""
    h, w = frames.shape[1:3]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> tuple[Path, float]:
    """12 s of the v3 synthetic world at 160×120 (a face the Haar cascade finds) and its true HR."""
    from protocols.synthetic import SyntheticDataset

    ds = SyntheticDataset(tier="pure_like", n_subjects=1, duration_s=12, width=160, height=120, seed=0, tasks=("still",),
                          codecs=("none",), face_fraction=(0.8, 0.8))
    rec = ds.record(ds.record_ids()[0])
    d = tmp_path_factory.mktemp("videos")
    path = _write_avi(d / "face.avi", rec.frames.read_all())
    beats = np.asarray(rec.meta["beat_times_s"])
    beats = beats[(beats > 0) & (beats < 12)]
    return path, float(60.0 / np.mean(np.diff(beats)))


def test_predict_writes_pulse_hr_summary_and_report(face_video, tmp_path, capsys):
    video, true_hr = face_video
    out = tmp_path / "out"
    assert main([str(video), f"out={out}", "progress=false", "window_s=8", "stride_s=2"]) == 0
    d = out / "face"
    assert sorted(p.name for p in d.iterdir()) == ["bvp.csv", "hr.csv", "report.png", "summary.json"]
    bvp = np.loadtxt(d / "bvp.csv", delimiter=",", skiprows=1)
    assert bvp.shape == (360, 2) and np.all(np.isfinite(bvp))
    assert np.allclose(np.diff(bvp[:, 0]), 1 / FPS, atol=1e-3)
    lines = (d / "hr.csv").read_text().splitlines()
    assert lines[0] == "t_start_s,t_end_s,hr_bpm,quality,snr_db,prominence_db,face_fraction"
    assert len(lines) - 1 == 3  # windows at 0, 2, 4 s of 8 s in 12 s
    s = json.loads((d / "summary.json").read_text())
    assert abs(s["hr_bpm"] - true_hr) < 3.0, (s["hr_bpm"], true_hr)
    assert s["frames"] == 360 and s["fps"] == FPS and s["face_coverage"] == 1.0
    assert s["method"]["name"] == "pos" and s["input_shape"]["size"] == 72 and s["checkpoint"] is None
    assert "skipped" in s["hrv"]  # 12 s < 60 s
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert "face.avi: HR" in capsys.readouterr().out


def test_folder_run_goes_on_past_bad_files_and_lists_them(face_video, tmp_path, capsys):
    video, _ = face_video
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.avi").write_bytes(video.read_bytes())
    (src / "empty.mp4").write_bytes(b"")
    (src / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    data = video.read_bytes()
    (src / "truncated.avi").write_bytes(data[: len(data) // 3])
    rng = np.random.default_rng(0)
    _write_avi(src / "noface.avi", rng.integers(0, 255, (180, 120, 160, 3), dtype=np.uint8))
    _write_avi(src / "oneframe.avi", np.full((1, 120, 160, 3), 128, np.uint8))
    _write_avi(src / "slow.avi", np.full((20, 120, 160, 3), 128, np.uint8), fps=2.0)
    out = tmp_path / "out"
    assert main([str(src), f"out={out}", "progress=false", "report=false"]) == 1
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["good"]  # nothing half-written, no temp folders
    expect = {"empty.mp4": "empty file", "garbage.mp4": "cannot open video", "truncated.avi": "truncated",
              "noface.avi": "no face found", "oneframe.avi": "too short", "slow.avi": "unsupported frame rate 2"}
    for name, why in expect.items():
        line = next((ln for ln in err.splitlines() if ln.startswith("  FAILED") and name in ln), "")
        assert why in line, (name, err)


def test_no_face_policies(tmp_path, capsys):
    rng = np.random.default_rng(1)
    video = _write_avi(tmp_path / "noface.avi", rng.integers(0, 255, (180, 120, 160, 3), dtype=np.uint8))
    assert main([str(video), f"out={tmp_path / 'a'}", "progress=false", "report=false", "no_face=skip_record"]) == 0
    assert "skipped" in capsys.readouterr().out and not (tmp_path / "a" / "noface").exists()
    assert main([str(video), f"out={tmp_path / 'b'}", "progress=false", "report=false", "no_face=full_frame"]) == 0
    s = json.loads((tmp_path / "b" / "noface" / "summary.json").read_text())
    assert s["face_coverage"] == 0.0 and len(s["no_face_seconds"]) == 6
    assert {ln.split(",")[3] for ln in (tmp_path / "b" / "noface" / "hr.csv").read_text().splitlines()[1:]} == {"no_face"}


def test_live_prints_hr_every_stride(face_video, tmp_path):
    video, true_hr = face_video
    lines: list[str] = []
    info = build_predict_method("pos", {})
    s = predict_live(str(video), info, PredictConfig(window_s=8, stride_s=1, report=False), tmp_path, realtime=False,
                     echo=lines.append)
    assert len(lines) == 5  # windows ending at 8, 9, 10, 11, 12 s
    assert all(ln.startswith("[live] t=") and "latency" in ln for ln in lines)
    assert s["live"]["real_time_factor"] > 1 and s["live"]["latency_ms_median"] >= 0
    assert abs(s["hr_bpm"] - true_hr) < 4.0
    assert (tmp_path / "face" / "summary.json").is_file()


def test_training_methods_need_a_checkpoint():
    from benchmark.registry import discover

    discover()
    with pytest.raises(ValueError, match="must be trained: give method.checkpoint=FILE"):
        build_predict_method("physnet", {})
    with pytest.raises(ValueError, match="training-free"):
        build_predict_method("pos", {"checkpoint": "x.pt"})


def test_unknown_argument_is_an_error():
    with pytest.raises(ValueError, match="unknown argument 'windows'"):
        main(["x.mp4", "windows=3"])


def test_neural_checkpoint_runs_at_its_recorded_shape(face_video, tmp_path):
    import torch

    from benchmark.registry import create_method, discover
    from benchmark.shape_guard import wrap

    discover()
    m = create_method("physnet", frames=32, size=32)
    ckpt = tmp_path / "physnet.pt"
    torch.save(wrap(m.get_model().state_dict(), m.input_spec(), 30.0), ckpt)
    video, _ = face_video
    out = tmp_path / "out"
    assert main([str(video), "method=physnet", f"method.checkpoint={ckpt}", f"out={out}", "progress=false", "report=false"]) == 0
    s = json.loads((out / "face" / "summary.json").read_text())
    assert s["input_shape"]["frames"] == 32 and s["input_shape"]["size"] == 32
    assert s["input_shape"]["source"] == "recorded in the checkpoint" and s["box_coef"] == 1.5
    assert len((out / "face" / "bvp.csv").read_text().splitlines()) == 361
    with pytest.raises(ValueError, match="trained at 32 frames × 32×32 .* method.frames=64 would run it at 64 frames × 32×32"):
        build_predict_method("physnet", {"checkpoint": str(ckpt), "frames": 64})


def test_predict_help_starts_nothing(capsys):
    from benchmark import cli

    assert cli.main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:\n  rppg-bench predict PATH") and "source=camera:0" in out


def test_skin_mask_makes_the_spatial_mean_the_skin_mean():
    from benchmark.predict import fill_non_skin

    crop = np.zeros((8, 8, 3), np.uint8)
    crop[:, :4] = (200, 140, 120)  # skin-coloured
    crop[:, 4:] = (30, 60, 200)  # blue background
    fill_non_skin(crop)
    assert np.all(crop == np.array([200, 140, 120], np.uint8))
    blue = np.full((8, 8, 3), (30, 60, 200), np.uint8)
    fill_non_skin(blue)  # no skin: left as it is
    assert np.all(blue == np.array([30, 60, 200], np.uint8))


def test_camera_source_runs_the_live_path(face_video, tmp_path, monkeypatch):
    """``source=camera:N`` with OpenCV's capture replaced by one that plays the test video (no camera here)."""
    video, true_hr = face_video
    real = cv2.VideoCapture
    opened: list[int] = []

    class FakeCamera:
        def __init__(self, index):
            opened.append(index)
            self.cap = real(str(video))

        def __getattr__(self, name):
            return getattr(self.cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", FakeCamera)
    lines: list[str] = []
    info = build_predict_method("pos", {})
    s = predict_live("camera:2", info, PredictConfig(window_s=8, stride_s=2, report=False), tmp_path, echo=lines.append)
    assert opened == [2] and s["frames"] == 360 and len(lines) == 3
    assert abs(s["hr_bpm"] - true_hr) < 4.0 and (tmp_path / "camera_2" / "bvp.csv").is_file()


def test_two_videos_with_one_name_are_refused(face_video, tmp_path):
    video, _ = face_video
    (tmp_path / "a.avi").write_bytes(video.read_bytes())
    (tmp_path / "a.mkv").write_bytes(video.read_bytes())
    with pytest.raises(ValueError, match="same output folder"):
        main([str(tmp_path), f"out={tmp_path / 'out'}", "progress=false"])
    assert not (tmp_path / "out").exists()
