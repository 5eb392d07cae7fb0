"""Image-folder loaders on tiny fixtures in their exact layouts: PURE (PNG + JSON), iBVP (BMP + CSV)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dataset_fixtures import frames_rgb, sine, write_images

from protocols.base import DatasetFormatError, create_dataset
from protocols.datasets._common import resample_by_index

from dataset_fixtures import tiny_records  # noqa: E402,F401 - fixture used through pytestmark

pytestmark = pytest.mark.usefixtures("tiny_records")  # layouts are parsed on a few frames

T0_NS = 1_392_643_993_642_815_000  # a PURE-like Unix time in ns


def _pure(root, name, n=25, hz=1.2, label_lead_s=0.05, seed=0):
    """PURE layout: jittered ~30 Hz frame stamps in the PNG names, 60 Hz oximeter samples."""
    rng = np.random.default_rng(seed)
    ft = np.cumsum(np.r_[0, rng.uniform(0.030, 0.037, n - 1)])  # s, irregular frame clock
    frame_ns = (T0_NS + np.round(ft * 1e9)).astype(np.int64)
    lt = np.arange(-label_lead_s, ft[-1] + 0.1, 1 / 60)  # label starts before the camera
    label_ns = (T0_NS + np.round(lt * 1e9)).astype(np.int64)
    frames = frames_rgb(n, seed=seed)
    write_images(root / name / name, frames, [f"Image{v}.png" for v in frame_ns])
    doc = {
        "/FullPackage": [{"Timestamp": int(t), "Value": {"waveform": float(w), "pulseRate": 70, "o2saturation": 98, "signalStrength": 4}}
                         for t, w in zip(label_ns, sine(lt, hz), strict=True)],
        "/Image": [{"Timestamp": int(t)} for t in frame_ns],
    }
    (root / name / f"{name}.json").write_text(json.dumps(doc))
    return frames, ft, lt


def test_pure_layout_timestamps_and_meta(tmp_path):
    frames, ft, lt = _pure(tmp_path, "01-02")
    _pure(tmp_path, "10-01", seed=1)
    loader = create_dataset("pure", root=tmp_path)
    assert loader.record_ids() == ["01-02", "10-01"]
    r = loader.record("01-02")
    assert (r.subject, r.meta["setup"], r.meta["setup_name"]) == ("1", 2, "talking")
    assert loader.record("10-01").subject == "10"
    np.testing.assert_array_equal(r.frames.read_all(), frames)  # lossless PNG, in timestamp order
    assert r.fps == pytest.approx((len(ft) - 1) / ft[-1])       # measured from the frame stamps
    np.testing.assert_allclose(r.ppg, sine(ft, 1.2), atol=2e-3)  # each frame gets the PPG at its capture time
    # the toolbox's index stretch of the ~2x longer waveform loses the phase
    assert np.abs(resample_by_index(sine(lt, 1.2), len(ft), "x") - sine(ft, 1.2)).max() > 0.2
    assert create_dataset("pure", root=tmp_path, fps=30).record("01-02").fps == 30.0


def test_pure_errors(tmp_path):
    _pure(tmp_path, "02-01")
    (tmp_path / "02-01" / "02-01.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match=r"02-01\.json: invalid JSON"):
        list(create_dataset("pure", root=tmp_path).records())
    _pure(tmp_path, "03-01", n=60)
    doc = json.loads((tmp_path / "03-01" / "03-01.json").read_text())
    doc["/FullPackage"] = doc["/FullPackage"][:30]  # 0.5 s of label for a ~2-s video
    (tmp_path / "03-01" / "03-01.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetFormatError, match=r"03-01\.json: label covers"):
        create_dataset("pure", root=tmp_path).record("03-01")
    _pure(tmp_path, "04-01", n=1)
    with pytest.raises(DatasetFormatError, match=r"04-01/04-01: cannot measure the frame rate"):
        create_dataset("pure", root=tmp_path).record("04-01")


def _ibvp(root, name, n=30, low=(10, 16)):
    d = root / name
    frames = frames_rgb(n, 12, 16, seed=len(name))
    write_images(d / f"{name}_rgb", frames, [f"{i}.bmp" for i in range(n)])  # natural order: 2.bmp < 10.bmp
    (d / f"{name}_t").mkdir()
    t = np.arange(n) / 30.0
    sq2 = np.full(n, 0.9)
    sq2[low[0] : low[1]] = 0.1
    rows = [f"{b:.6f},{0.8},{0.9},{q},{1.2}" for b, q in zip(sine(t, 1.4), sq2, strict=True)]
    (d / f"{name}_bvp.csv").write_text("BVP,SQPhysMD,SQ1,SQ2,Perfusion_Value\n" + "\n".join(rows) + "\n")
    return frames, sq2


def test_ibvp_quality_keep_and_drop(tmp_path):
    frames, sq2 = _ibvp(tmp_path, "p08_b")
    keep = create_dataset("ibvp", root=tmp_path).record("p08_b")
    assert (keep.subject, keep.meta["condition"], keep.meta["confidential_no_media"]) == ("p08", "b", True)
    np.testing.assert_array_equal(keep.frames.read_all(), frames)
    np.testing.assert_allclose(keep.ppg, sine(np.arange(30) / 30.0, 1.4), atol=1e-6)
    np.testing.assert_allclose(keep.meta["signal_quality"], sq2)
    assert keep.meta["sq_low_fraction"] == pytest.approx(6 / 30)
    drop = create_dataset("ibvp", root=tmp_path, quality_policy="drop").record("p08_b")
    kept = sq2 > 0.3
    assert len(drop.frames) == len(drop.ppg) == 24 and drop.meta["sq_dropped_frames"] == 6 and drop.meta["has_gaps"]
    np.testing.assert_array_equal(drop.frames.read_all(), frames[kept])  # toolbox: frames and labels deleted together
    np.testing.assert_allclose(drop.ppg, keep.ppg[kept])
    # header names that differ fall back to the toolbox's column positions (0 = BVP, 3 = SQ)
    p = tmp_path / "p08_b" / "p08_b_bvp.csv"
    p.write_text(p.read_text().replace("BVP,SQPhysMD,SQ1,SQ2", "a,b,c,d"))
    np.testing.assert_allclose(create_dataset("ibvp", root=tmp_path).record("p08_b").meta["signal_quality"], sq2)


def test_ibvp_errors(tmp_path):
    _ibvp(tmp_path, "p01_a", low=(0, 30))
    with pytest.raises(DatasetFormatError, match=r"p01_a_bvp\.csv: every frame has signal quality"):
        create_dataset("ibvp", root=tmp_path, quality_policy="drop").record("p01_a")
    p = tmp_path / "p01_a" / "p01_a_bvp.csv"
    lines = p.read_text().splitlines()
    lines[5] = "nan,0.8,0.9,0.9,1.2"
    p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"p01_a_bvp\.csv: PPG label contains 1 NaN"):
        create_dataset("ibvp", root=tmp_path).record("p01_a")
    lines[5] = "0.1,0.8,0.9,0.9,1.2"
    p.write_text("\n".join(lines[:11]))  # 10 samples = 0.33 s for a 1-s video
    with pytest.raises(DatasetFormatError, match=r"p01_a_bvp\.csv: label covers"):
        create_dataset("ibvp", root=tmp_path, label_tolerance_s=0.2).record("p01_a")
