"""MATLAB-file loaders on tiny fixtures: MMPD (.mat v5, scipy) and SCAMPS (.mat v7.3 = HDF5, h5py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from protocols.base import DatasetFormatError, create_dataset

from dataset_fixtures import tiny_records  # noqa: E402,F401 - fixture used through pytestmark

pytestmark = pytest.mark.usefixtures("tiny_records")  # layouts are parsed on a few frames

META = {"light": "LED-high", "motion": "Stationary (after exercise)", "exercise": "True", "skin_color": 4,
        "gender": "female", "glasser": "False", "hair_cover": "True", "makeup": "False"}


def _mmpd(root, subj, k, n=20, h=6, w=8, n_label=37, seed=0, **meta):
    rng = np.random.default_rng(seed)
    video = rng.uniform(0, 1, size=(n, h, w, 3))
    gt = np.sin(np.linspace(0, 3, n_label))[None, :]  # MATLAB row vector (1, L)
    d = root / f"subject{subj}"
    d.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(d / f"p{subj}_{k}.mat", {"video": video, "GT_ppg": gt, **{**META, **meta}}, do_compression=True)
    return video, gt.ravel()


def test_mmpd_layout_frames_metadata_and_index_clock(tmp_path):
    video, gt = _mmpd(tmp_path, 2, 0)
    _mmpd(tmp_path, 2, 1, light="Nature", motion="Watching Videos", exercise="False", skin_color=3)  # legacy mislabel
    _mmpd(tmp_path, 10, 0)
    loader = create_dataset("mmpd", root=tmp_path)
    assert loader.record_ids() == ["p2_0", "p2_1", "p10_0"]
    r = loader.record("p2_0")
    assert (r.subject, r.fps, len(r.frames), (r.frames.height, r.frames.width)) == ("subject2", 30.0, 20, (6, 8))
    np.testing.assert_array_equal(r.frames.read_all(), np.rint(video * 255).astype(np.uint8))  # toolbox: round(x·255)
    blocks = list(r.frames.iter_blocks(7))
    assert [len(b) for b in blocks] == [7, 7, 6] and all(b.dtype == np.uint8 for b in blocks)
    # MMPD gives GT_ppg no clock: the only option is the index stretch (first↔first, last↔last)
    np.testing.assert_allclose(r.ppg, np.interp(np.linspace(0, 36, 20), np.arange(37), gt))
    assert {k: r.meta[k] for k in ("light", "motion", "exercise", "skin_color", "gender", "glasser", "hair_cover", "makeup")} == {
        "light": 2, "motion": 1, "exercise": 1, "skin_color": 4, "gender": 2, "glasser": 2, "hair_cover": 1, "makeup": 2}
    assert r.meta["motion_name"] == "Stationary (after exercise)" and r.meta["experiment"] == 0
    r1 = loader.record("p2_1")
    assert (r1.meta["light"], r1.meta["motion"], r1.meta["exercise"], r1.meta["skin_color"]) == (4, 4, 2, 3)


def test_mmpd_errors(tmp_path):
    _mmpd(tmp_path, 1, 0, light="Candle")
    with pytest.raises(DatasetFormatError, match=r"p1_0\.mat: unsupported light value 'Candle'"):
        create_dataset("mmpd", root=tmp_path).record("p1_0")
    _mmpd(tmp_path, 1, 1, skin_color=7)
    with pytest.raises(DatasetFormatError, match=r"p1_1\.mat: unsupported skin_color '7'"):
        create_dataset("mmpd", root=tmp_path).record("p1_1")
    scipy.io.savemat(tmp_path / "subject1" / "p1_2.mat", {"video": np.zeros((3, 4, 4, 3)), **META})
    with pytest.raises(DatasetFormatError, match=r"p1_2\.mat: variable 'GT_ppg' missing"):
        create_dataset("mmpd", root=tmp_path).record("p1_2")
    scipy.io.savemat(tmp_path / "subject1" / "p1_3.mat", {"video": np.zeros((3, 4, 4, 3)), "GT_ppg": np.array([[1.0, np.nan, 2.0]]), **META})
    with pytest.raises(DatasetFormatError, match=r"p1_3\.mat: PPG label contains 1 NaN"):
        create_dataset("mmpd", root=tmp_path).record("p1_3")


def _scamps(path, n=12, h=8, w=10, seed=0, chunks=None, n_label=None):
    """MATLAB v7.3 layout: a MATLAB (T, H, W, 3) array is stored transposed, i.e. HDF5 (3, W, H, T)."""
    rng = np.random.default_rng(seed)
    video = rng.uniform(0, 1, size=(n, h, w, 3))
    ppg = np.sin(np.arange(n_label or n) / 3.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        ds = f.create_dataset("Xsub", data=video.transpose(3, 2, 1, 0), chunks=chunks, compression="gzip" if chunks else None)
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        f.create_dataset("d_ppg", data=ppg[:, None]).attrs["MATLAB_class"] = np.bytes_("double")
        f.create_dataset("d_br", data=np.zeros((1, n)))
    return video, ppg


def test_scamps_official_folders_transposition_and_streaming(tmp_path):
    v1, p1 = _scamps(tmp_path / "Train" / "P000001.mat")
    v2, _ = _scamps(tmp_path / "Val" / "P000002.mat", seed=1, chunks=(3, 5, 4, 12))  # chunks span all frames
    _scamps(tmp_path / "Test" / "P000003.mat", seed=2)
    loader = create_dataset("scamps", root=tmp_path)
    recs = list(loader.records())
    assert [(r.id, r.meta["split"]) for r in recs] == [("P000001", "train"), ("P000002", "val"), ("P000003", "test")]
    r = recs[0]
    assert (r.frames.height, r.frames.width, len(r.frames), r.fps) == (8, 10, 12, 30.0)
    np.testing.assert_array_equal(r.frames.read_all(), np.rint(v1 * 255).astype(np.uint8))
    np.testing.assert_allclose(r.ppg, p1)  # frame-aligned by construction
    assert recs[1].frames.whole  # chunked across time → read in one go, same frames
    np.testing.assert_array_equal(np.concatenate(list(recs[1].frames.iter_blocks(5))), np.rint(v2 * 255).astype(np.uint8))
    assert "face_box" not in r.meta
    boxed = create_dataset("scamps", root=tmp_path, known_face_box=True).record("P000001")
    assert boxed.meta["face_box"] == (0, 0, 10, 8)


def test_scamps_errors(tmp_path):
    _scamps(tmp_path / "P000004.mat", n_label=10)
    with pytest.raises(DatasetFormatError, match=r"P000004\.mat: 'd_ppg' has 10 samples but 'Xsub' has 12 frames"):
        create_dataset("scamps", root=tmp_path).record("P000004")
    scipy.io.savemat(tmp_path / "P000005.mat", {"Xsub": np.zeros((2, 2, 2, 3))})  # v5, not v7.3
    with pytest.raises(DatasetFormatError, match=r"P000005\.mat: not a MATLAB v7\.3"):
        create_dataset("scamps", root=tmp_path).record("P000005")
