"""Shared loader machinery: video/image frame sources, label alignment, readers, root checks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from dataset_fixtures import frames_rgb, sine, write_images, write_video

from protocols.base import DatasetFormatError, create_dataset
from protocols.datasets import _common
from protocols.datasets._common import ImageFolderFrames, VideoFileFrames, align_label, read_csv, resample_by_index

from dataset_fixtures import tiny_records  # noqa: E402,F401 - fixture used through pytestmark

pytestmark = pytest.mark.usefixtures("tiny_records")  # layouts are parsed on a few frames


def test_video_frames_roundtrip_subset_and_pickle(tmp_path):
    frames = frames_rgb(23, 16, 20)
    path = write_video(tmp_path / "v.avi", frames, fps=30)
    v = VideoFileFrames(path)
    assert (v.n_frames, v.height, v.width, v.container_fps) == (23, 16, 20, 30.0)
    blocks = list(v.iter_blocks(5))
    assert [len(b) for b in blocks] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate(blocks), frames)  # lossless, RGB order restored
    sub = v.subset([2, 3, 10, 22])
    np.testing.assert_array_equal(sub.read_all(), frames[[2, 3, 10, 22]])
    np.testing.assert_array_equal(sub.subset([1, 3]).read_all(), frames[[3, 22]])
    clone = pickle.loads(pickle.dumps(v))  # cheap to send to a worker: a path and a few ints
    assert len(pickle.dumps(v)) < 1000
    np.testing.assert_array_equal(clone.read_all(), frames)
    assert VideoFileFrames(path, count_frames=True).n_frames == 23


def test_bad_videos_raise_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"this is not a video" * 100)
    with pytest.raises(DatasetFormatError, match="garbage.avi"):
        VideoFileFrames(garbage)
    import cv2

    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"FFV1"), 30, (16, 16)).release()  # zero frames
    with pytest.raises(DatasetFormatError, match=r"empty\.avi.*(no decodable frames|cannot open)"):
        VideoFileFrames(empty)
    with pytest.raises(DatasetFormatError, match="missing"):
        VideoFileFrames(tmp_path / "nope.avi")
    # truncated: the container announces 60 frames, the file stops after a few
    full = write_video(tmp_path / "full.avi", frames_rgb(60, 32, 32), fps=30)
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetFormatError, match=r"cut\.avi"):
        VideoFileFrames(cut).read_all()


def test_container_without_frame_rate_is_an_error(tmp_path, monkeypatch):
    path = write_video(tmp_path / "rec.avi", frames_rgb(30), fps=30)
    (tmp_path / "rec.csv").write_text("ppg\n" + "\n".join("0.5" for _ in range(60)))
    real = _common.cv2.VideoCapture

    class NoFps:  # an OpenCV capture whose container states no frame rate
        def __init__(self, *a):
            self._c = real(*a)

        def get(self, prop):
            return 0.0 if prop == _common.cv2.CAP_PROP_FPS else self._c.get(prop)

        def __getattr__(self, name):
            return getattr(self._c, name)

    monkeypatch.setattr(_common.cv2, "VideoCapture", NoFps)
    loader = create_dataset("folder", root=tmp_path, ppg_fs=60)
    with pytest.raises(DatasetFormatError, match=r"rec\.avi: frame rate missing or 0"):
        list(loader.records())
    assert len(next(create_dataset("folder", root=tmp_path, ppg_fs=60, fps=30).records()).frames) == 30
    with pytest.raises(DatasetFormatError, match=r"rec\.avi: configured fps must be > 0"):
        list(create_dataset("folder", root=tmp_path, ppg_fs=60, fps=0).records())


def test_image_folder_frames(tmp_path):
    frames = frames_rgb(7, 12, 10)
    paths = write_images(tmp_path / "img", frames, [f"f{i}.png" for i in range(7)])
    src = ImageFolderFrames(paths)
    np.testing.assert_array_equal(src.read_all(), frames)
    np.testing.assert_array_equal(src.subset([0, 6]).read_all(), frames[[0, 6]])
    paths[3].write_bytes(b"broken")
    with pytest.raises(DatasetFormatError, match=r"f3\.png: unreadable image"):
        src.read_all()


def test_align_label_keeps_phase_across_rates_and_offsets():
    fps, hz = 30.0, 1.3
    ft = np.arange(90) / fps
    lt = np.arange(-0.05, 3.2, 1 / 60)  # 60 Hz label starting 50 ms before the first frame
    al = align_label(sine(lt, hz), lt, ft, where="x")
    assert (al.start, al.stop) == (0, 90)
    np.testing.assert_allclose(al.ppg, sine(ft, hz), atol=5e-3)
    assert al.label_rate_hz == pytest.approx(60)
    # index stretching (the toolbox) shifts the phase because the streams do not start together
    stretched = resample_by_index(sine(lt, hz), 90, "x")
    assert np.abs(stretched - sine(ft, hz)).max() > 0.2


def test_align_label_trims_within_tolerance_and_rejects_beyond():
    ft = np.arange(60) / 30.0  # 2 s of video
    lt = np.arange(0, 1.8, 1 / 64)  # label ends 0.2 s early
    al = align_label(sine(lt), lt, ft, where="lab.csv", tolerance_s=0.5)
    assert al.start == 0 and 52 <= al.stop <= 55  # frames past the label's end are dropped
    assert al.meta()["frames_trimmed"] == [0, 60 - al.stop]
    with pytest.raises(DatasetFormatError, match=r"lab\.csv: label covers .*tolerance 0.1 s"):
        align_label(sine(lt), lt, ft, where="lab.csv", tolerance_s=0.1)
    bad = sine(lt)
    bad[10] = np.nan
    with pytest.raises(DatasetFormatError, match=r"lab\.csv: PPG label contains 1 NaN"):
        align_label(bad, lt, ft, where="lab.csv")
    with pytest.raises(DatasetFormatError, match="backwards"):
        align_label(sine(lt), lt[::-1], ft, where="lab.csv")


def test_read_csv_header_detection_and_errors(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("time,ppg\n0,1.5\n0.1,2.5\n")
    names, data = read_csv(p)
    assert names == ["time", "ppg"] and data.tolist() == [[0, 1.5], [0.1, 2.5]]
    p.write_text("1.0\n2.0\n")
    assert read_csv(p) == (None, pytest.approx(np.array([[1.0], [2.0]])))
    p.write_text("time,ppg\n0,1\n0.1,abc\n")
    with pytest.raises(DatasetFormatError, match=r"a\.csv: non-numeric value 'abc' at line 3"):
        read_csv(p)
    p.write_text("")
    with pytest.raises(DatasetFormatError, match="empty"):
        read_csv(p)
    with pytest.raises(DatasetFormatError, match="label file missing"):
        read_csv(tmp_path / "missing.csv")


@pytest.mark.parametrize("name", ["ubfc_rppg", "pure", "ubfc_phys", "mmpd", "scamps", "ibvp", "cohface", "folder"])
def test_root_missing_or_without_records(tmp_path, name):
    with pytest.raises(DatasetFormatError, match="does not exist"):
        create_dataset(name, root=tmp_path / "nowhere")
    with pytest.raises(DatasetFormatError, match="not set"):
        create_dataset(name, root=None)
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetFormatError, match=rf"{tmp_path}: no recognisable {name} records"):
        create_dataset(name, root=tmp_path)
