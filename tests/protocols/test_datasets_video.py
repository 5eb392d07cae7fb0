"""Video-file loaders on tiny fixtures in their exact layouts: UBFC-rPPG, UBFC-Phys, COHFACE, folder."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from dataset_fixtures import frames_rgb, sine, write_video

from protocols.base import DatasetFormatError, create_dataset
from protocols.datasets.ubfc_phys import toolbox_exclusion_ids

from dataset_fixtures import tiny_records  # noqa: E402,F401 - fixture used through pytestmark

pytestmark = pytest.mark.usefixtures("tiny_records")  # layouts are parsed on a few frames

FPS = 30.0


# -- UBFC-rPPG -----------------------------------------------------------------------------------
def _ubfc2(root, name, n=24, label_hz=FPS, t_end=None, hz=1.1, nan=False):
    d = root / name
    frames = frames_rgb(n, seed=len(name))
    write_video(d / "vid.avi", frames, FPS)
    ts = np.arange(0, (t_end if t_end is not None else n / FPS), 1 / label_hz)
    ppg = sine(ts, hz)
    if nan:
        ppg[3] = np.nan
    hr = np.full_like(ts, 66.0)
    (d / "ground_truth.txt").write_text("\n".join("  ".join(f"{v:.7e}" for v in row) for row in (ppg, hr, ts)) + "\n")
    return frames


def test_ubfc_rppg_dataset2_layout_clock_and_order(tmp_path):
    frames = _ubfc2(tmp_path, "subject10")
    _ubfc2(tmp_path, "subject2", label_hz=60.0)  # a label on a different clock than the frames
    (tmp_path / "readme.txt").write_text("not a subject")
    loader = create_dataset("ubfc_rppg", root=tmp_path)
    recs = list(loader.records())
    assert [r.id for r in recs] == ["subject2", "subject10"]  # natural order, not filesystem/lexicographic
    r10 = recs[1]
    assert r10.subject == "subject10" and r10.fps == FPS and r10.meta["variant"] == "DATASET_2"
    np.testing.assert_array_equal(r10.frames.read_all(), frames)
    np.testing.assert_allclose(r10.ppg, sine(np.arange(24) / FPS, 1.1), atol=1e-6)
    # 60 Hz label with timestamps → 30 fps frames: the sine keeps its phase
    np.testing.assert_allclose(recs[0].ppg, sine(np.arange(24) / FPS, 1.1), atol=1e-3)
    assert recs[0].meta["label_rate_hz"] == pytest.approx(60, rel=1e-3)
    assert recs[0].meta["device_hr_mean_bpm"] == pytest.approx(66.0)
    # the toolbox's one-sample-per-frame reading cannot be applied to a 60 Hz label
    with pytest.raises(DatasetFormatError, match=r"subject2/ground_truth\.txt: clock=index needs one PPG sample per frame"):
        create_dataset("ubfc_rppg", root=tmp_path, clock="index").record("subject2")
    assert loader.key() != create_dataset("ubfc_rppg", root=tmp_path, clock="index").key()


def test_ubfc_rppg_dataset1_xmp_timestamps(tmp_path):
    d = tmp_path / "5-gt"
    write_video(d / "vid.avi", frames_rgb(30), FPS)
    rng = np.random.default_rng(0)
    t_ms = np.cumsum(rng.uniform(30, 50, size=40))  # irregular ~25 Hz sensor clock, starting at ~40 ms
    t_ms -= t_ms[0]
    rows = [f"{t:.0f},{70 + i % 3},{98},{sine(t / 1000, 0.9):.6f}" for i, t in enumerate(t_ms)]
    (d / "gtdump.xmp").write_text("\n".join(rows) + "\n")
    rec = next(create_dataset("ubfc_rppg", root=tmp_path).records())
    assert rec.meta["variant"] == "DATASET_1"
    keep = rec.meta["frames_trimmed"]
    ft = (np.arange(30) / FPS)[keep[0] : 30 - keep[1]]
    np.testing.assert_allclose(rec.ppg, sine(np.round(ft * 1000) / 1000, 0.9), atol=1.5e-2)
    # forcing the other variant finds the label missing
    with pytest.raises(DatasetFormatError, match=r"5-gt/ground_truth\.txt: label file ground_truth\.txt missing"):
        list(create_dataset("ubfc_rppg", root=tmp_path, variant="DATASET_2").records())


def test_ubfc_rppg_label_errors(tmp_path):
    _ubfc2(tmp_path, "subject1", n=60, t_end=1.0)  # a 2-s video with a 1-s label
    with pytest.raises(DatasetFormatError, match=r"subject1/ground_truth\.txt: label covers 1\.00 s but the video lasts 2\.00 s"):
        create_dataset("ubfc_rppg", root=tmp_path, label_tolerance_s=0.5).record("subject1")
    rec = create_dataset("ubfc_rppg", root=tmp_path, label_tolerance_s=1.5).record("subject1")
    assert len(rec.frames) == len(rec.ppg) == 31  # within tolerance: frames past the label are dropped
    _ubfc2(tmp_path, "subject3", nan=True)
    with pytest.raises(DatasetFormatError, match=r"subject3/ground_truth\.txt: PPG label contains 1 NaN"):
        create_dataset("ubfc_rppg", root=tmp_path).record("subject3")
    write_video(tmp_path / "subject4" / "vid.avi", frames_rgb(5), FPS)
    with pytest.raises(DatasetFormatError, match=r"subject4/ground_truth\.txt: label file missing"):
        create_dataset("ubfc_rppg", root=tmp_path).record("subject4")


# -- UBFC-Phys -----------------------------------------------------------------------------------
def _phys(root, subj, task, n=35, fps=35.0, label_s=None, hz=1.2):
    d = root / subj
    write_video(d / f"vid_{subj}_{task}.avi", frames_rgb(n), fps)
    t = np.arange(0, label_s if label_s is not None else n / fps, 1 / 64)
    (d / f"bvp_{subj}_{task}.csv").write_text("\n".join(f"{v:.6f}" for v in sine(t, hz)) + "\n")


def test_ubfc_phys_layout_rate_clock_and_tasks(tmp_path):
    for s in ("s2", "s10"):
        for task in ("T1", "T3"):
            _phys(tmp_path, s, task)
    (tmp_path / "s2" / "eda_s2_T1.csv").write_text("1\n2\n")  # other modalities are ignored
    loader = create_dataset("ubfc_phys", root=tmp_path)
    recs = list(loader.records())
    assert [r.id for r in recs] == ["s2_T1", "s2_T3", "s10_T1", "s10_T3"]
    r = recs[0]
    assert (r.subject, r.fps, r.meta["task"], r.meta["task_name"]) == ("s2", 35.0, "T1", "rest")
    np.testing.assert_allclose(r.ppg, sine(np.arange(35) / 35.0, 1.2), atol=5e-3)  # 64 Hz → 35 fps, in phase
    assert len(toolbox_exclusion_ids()) == 67 and "s3_T1" in toolbox_exclusion_ids()
    _phys(tmp_path, "s5", "T2", n=70, label_s=1.0)  # 2-s video, 1-s label
    with pytest.raises(DatasetFormatError, match=r"bvp_s5_T2\.csv: label covers"):
        create_dataset("ubfc_phys", root=tmp_path, label_tolerance_s=0.3).record("s5_T2")
    (tmp_path / "s10" / "bvp_s10_T3.csv").unlink()
    with pytest.raises(DatasetFormatError, match=r"bvp_s10_T3\.csv: label file missing"):
        create_dataset("ubfc_phys", root=tmp_path).record("s10_T3")


# -- COHFACE -------------------------------------------------------------------------------------
def _cohface(root, subj, sess, n=40, fps=20.0, with_time=True, hz=1.0):
    d = root / str(subj) / str(sess)
    frames = frames_rgb(n, seed=subj)
    write_video(d / "data.avi", frames, fps)
    t = np.arange(0, n / fps, 1 / 256)
    with h5py.File(d / "data.hdf5", "w") as f:
        f["pulse"] = sine(t, hz)
        f["respiration"] = np.zeros_like(t)
        if with_time:
            f["time"] = t + 1000.0  # an absolute clock; only differences matter
    return frames


def test_cohface_time_dataset_and_corrupted_start(tmp_path):
    _cohface(tmp_path, 1, 0)
    frames17 = _cohface(tmp_path, 17, 2, with_time=False)
    loader = create_dataset("cohface", root=tmp_path)
    r1, r17 = loader.records()
    assert (r1.id, r1.subject, r1.fps, r1.meta["video_id"], r1.meta["label_clock"]) == ("1_0", "1", 20.0, 100, "timestamps")
    np.testing.assert_allclose(r1.ppg, sine(np.arange(40) / 20.0), atol=1e-3)
    assert r17.meta["label_clock"].startswith("rate 256")
    drop = create_dataset("cohface", root=tmp_path, drop_corrupted_start=True)
    d1, d17 = drop.records()
    assert len(d1.frames) == 40 and len(d17.frames) == 10  # subjects 17–40 lose their first 30 frames
    np.testing.assert_array_equal(d17.frames.read_all(), frames17[30:])
    np.testing.assert_allclose(d17.ppg, sine(np.arange(30, 40) / 20.0), atol=1e-3)  # still aligned
    assert drop.key() != loader.key()


# -- folder --------------------------------------------------------------------------------------
def test_folder_layout_time_units_rate_and_errors(tmp_path):
    write_video(tmp_path / "walk.avi", frames_rgb(30), FPS)
    t = np.arange(0, 1.0, 1 / 100)
    (tmp_path / "walk.csv").write_text("time,ppg\n" + "\n".join(f"{1.7e12 + v * 1000:.3f},{p:.6f}" for v, p in zip(t, sine(t, 1.5), strict=True)))
    write_video(tmp_path / "alice" / "rest.mp4", frames_rgb(15, seed=3), 15.0, codec="mp4v")
    (tmp_path / "alice" / "rest.csv").write_text("ppg\n" + "\n".join(f"{p:.6f}" for p in sine(np.arange(50) / 50, 0.8)))
    loader = create_dataset("folder", root=tmp_path, time_unit="ms", ppg_fs=50)
    recs = {r.id: r for r in loader.records()}
    assert set(recs) == {"walk", "alice__rest"}
    walk, rest = recs["walk"], recs["alice__rest"]
    assert (walk.subject, rest.subject, rest.fps) == ("walk", "alice", 15.0)
    np.testing.assert_allclose(walk.ppg, sine(np.arange(30) / FPS, 1.5), atol=2e-3)  # absolute ms timestamps
    np.testing.assert_allclose(rest.ppg, sine(np.arange(15) / 15.0, 0.8), atol=2e-3)  # stated 50 Hz
    # the label may start after the video: label_offset_s shifts it, uncovered frames are trimmed
    late = create_dataset("folder", root=tmp_path, time_unit="ms", ppg_fs=50, label_offset_s=0.2).record("walk")
    assert late.meta["frames_trimmed"] == [6, 0] and len(late.frames) == len(late.ppg) == 24  # frames 0–5 precede the PPG
    np.testing.assert_allclose(late.ppg, sine(np.arange(6, 30) / FPS - 0.2, 1.5), atol=2e-3)
    with pytest.raises(DatasetFormatError, match=r"rest\.csv: no 'time' column and no ppg_fs configured"):
        create_dataset("folder", root=tmp_path, time_unit="ms").record("alice__rest")
    (tmp_path / "alice" / "rest.csv").unlink()
    with pytest.raises(DatasetFormatError, match=r"rest\.csv: label file missing"):
        create_dataset("folder", root=tmp_path, ppg_fs=50).record("alice__rest")


@pytest.mark.parametrize("unit,scale", [("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)])
def test_folder_every_time_unit_aligns_the_label(tmp_path, unit, scale):
    """Each ``time_unit`` scales the time column correctly (issue 17: ``us`` was never exercised; a
    wrong factor stretches or squeezes the label against the frames). Absolute Unix-epoch times."""
    write_video(tmp_path / "walk.avi", frames_rgb(30), FPS)
    t = np.arange(0, 1.0, 1 / 100)
    start = 1.7e9 * scale
    (tmp_path / "walk.csv").write_text("time,ppg\n" + "\n".join(f"{start + v * scale:.6f},{p:.6f}" for v, p in zip(t, sine(t, 1.5), strict=True)))
    rec = create_dataset("folder", root=tmp_path, time_unit=unit).record("walk")
    assert unit in rec.meta["label_clock"]
    np.testing.assert_allclose(rec.ppg, sine(np.arange(30) / FPS, 1.5), atol=2e-3)
