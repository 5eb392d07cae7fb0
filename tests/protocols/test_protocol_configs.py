"""Published protocols as hydra configs: generated files are current, parse, and select the
documented members on fixture roots with the real subject ids."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from dataset_fixtures import frames_rgb, write_images, write_video
from omegaconf import OmegaConf

from protocols import make_protocol_configs as gen
from protocols.protocol import Protocol

from dataset_fixtures import tiny_records  # noqa: E402,F401 - fixture used through pytestmark

pytestmark = pytest.mark.usefixtures("tiny_records")  # layouts are parsed on a few frames

CONF = Path(gen.__file__).resolve().parents[1] / "benchmark" / "conf" / "protocol"
REAL = list(gen.DATASETS)
# UBFC-rPPG DATASET_2 subject ids (reference §A.1)
UBFC_IDS = [1, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27] + list(range(30, 50))


def _load(name: str, roots: dict[str, Path] | None = None) -> Protocol:
    paths = {ds: str((roots or {}).get(ds, f"/data/{ds}")) for ds in REAL}
    cfg = OmegaConf.merge({"paths": paths}, {"protocol": OmegaConf.load(CONF / f"{name}.yaml")})
    return Protocol.from_config(cfg.protocol)


def _split_ids(p: Protocol, alias: str) -> dict[str, list[str]]:
    loader = p.loader(alias)
    recs = list(loader.records())
    return {split: [r.id for part in parts for r in p.select(alias, recs, part)] for split, parts in p.splits.items()}


def test_generated_configs_are_current_and_complete():
    assert gen.main(["--check"]) == 0
    for src, tgt in itertools.permutations(REAL, 2):
        p = _load(f"cross_{src}_{tgt}")
        assert set(p.datasets) == {src, tgt} and p.datasets[src]["root"] == f"/data/{src}"
        assert [x.dataset for x in p.splits["test"]] == [tgt] and (p.splits["test"][0].begin, p.splits["test"][0].end) == (0, 1)
        if src != "scamps":
            assert [(x.begin, x.end, x.unit) for x in p.splits["train"] + p.splits["val"]] == [(0.0, 0.8, "subject"), (0.8, 1.0, "subject")]
    assert _load("cross_pure_ubfc_phys101").splits["test"][0].exclude[:2] == ["s3_T1", "s8_T1"]
    assert dict(_load("cross_ubfc_rppg_mmpd_simple").splits["test"][0].filter) == gen.MMPD_SIMPLE


def test_intra_ubfc_rppg_first_30_last_12_lexicographic(tmp_path):
    for n in UBFC_IDS:
        d = tmp_path / f"subject{n}"
        write_video(d / "vid.avi", frames_rgb(2, 8, 8), 30.0)
        (d / "ground_truth.txt").write_text("0.1 0.2\n70 70\n0 0.0333333\n")
    p = _load("intra_ubfc_rppg", {"ubfc_rppg": tmp_path})
    ids = _split_ids(p, "ubfc_rppg")
    assert [len(ids[s]) for s in ("train", "val", "test")] == [24, 6, 12]
    assert sorted(ids["test"], key=lambda s: int(s[7:])) == [f"subject{n}" for n in (5, 8, 9, 41, 42, 43, 44, 45, 46, 47, 48, 49)]
    first30 = sorted(f"subject{n}" for n in UBFC_IDS)[:30]
    assert ids["train"] + ids["val"] != [] and set(ids["train"]) | set(ids["val"]) == set(first30)
    assert set(ids["val"]) == set(first30[24:])  # validation carved from the training subjects


def test_intra_pure_and_cross_source_subjects(tmp_path):
    t0 = 1_400_000_000_000_000_000
    for subj, setup in itertools.product(range(1, 11), range(1, 7)):
        if (subj, setup) == (6, 2):
            continue  # missing from distributed copies
        name = f"{subj:02d}-{setup:02d}"
        write_images(tmp_path / name / name, frames_rgb(2, 8, 8), [f"Image{t0}.png", f"Image{t0 + 33_333_333}.png"])
        pkg = [{"Timestamp": t0 + k * 16_666_667, "Value": {"waveform": k}} for k in range(4)]
        (tmp_path / name / f"{name}.json").write_text(json.dumps({"/FullPackage": pkg, "/Image": []}))
    intra = _split_ids(_load("intra_pure", {"pure": tmp_path}), "pure")
    subjects = {s: sorted({int(i[:2]) for i in ids}) for s, ids in intra.items()}
    assert subjects == {"train": [1, 2, 3, 4, 5], "val": [6], "test": [7, 8, 9, 10]}
    assert len(intra["train"]) + len(intra["val"]) == 35 and len(intra["test"]) == 24  # "sequential 6:4"
    cross = _split_ids(_load("cross_pure_ubfc_rppg", {"pure": tmp_path}), "pure")
    assert sorted({int(i[:2]) for i in cross["train"]}) == list(range(1, 9)) and len(cross["train"]) == 47
    assert sorted({int(i[:2]) for i in cross["val"]}) == [9, 10] and len(cross["val"]) == 12


def test_mmpd_intra_and_simple_subset(tmp_path):
    meta = {"light": "LED-low", "motion": "Stationary", "exercise": "False", "gender": "male", "glasser": "False",
            "hair_cover": "False", "makeup": "False"}
    for subj in range(1, 34):
        d = tmp_path / f"subject{subj}"
        d.mkdir()
        for k, light in enumerate(("LED-low", "Nature")):
            scipy.io.savemat(d / f"p{subj}_{k}.mat", {"video": np.zeros((2, 2, 2, 3)), "GT_ppg": np.zeros((1, 3)),
                                                      **meta, "light": light, "skin_color": 3 if subj % 2 else 5})
    ids = _split_ids(_load("intra_mmpd", {"mmpd": tmp_path}), "mmpd")
    subjects = {s: sorted({int(i[1:].split("_")[0]) for i in v}) for s, v in ids.items()}
    assert subjects == {"train": list(range(1, 24)), "val": [24, 25, 26], "test": list(range(27, 34))}
    simple = _split_ids(_load("cross_pure_mmpd_simple", {"mmpd": tmp_path}), "mmpd")["test"]
    assert simple == [f"p{s}_0" for s in range(1, 34, 2)]  # LED light and skin tone 3 only


def test_scamps_source_uses_official_folders(tmp_path):
    for split, n in (("Train", 3), ("Val", 2), ("Test", 2)):
        for k in range(n):
            path = tmp_path / split / f"P{split}{k}.mat"
            path.parent.mkdir(exist_ok=True)
            with h5py.File(path, "w") as f:
                f["Xsub"] = np.zeros((3, 4, 4, 2))
                f["d_ppg"] = np.zeros((2, 1))
    ids = _split_ids(_load("cross_scamps_pure", {"scamps": tmp_path}), "scamps")
    assert ids["train"] == ["PTrain0", "PTrain1", "PTrain2"] and ids["val"] == ["PVal0", "PVal1"]


@pytest.mark.parametrize("name", ["intra_ubfc_rppg", "intra_pure", "intra_mmpd", "intra_mmpd_simple", "intra_cohface"])
def test_intra_ranges_never_overlap_test(name):
    p = _load(name)
    (test,) = p.splits["test"]
    for split in ("train", "val"):
        (part,) = p.splits[split]
        assert part.end <= test.begin and dict(part.filter) == dict(test.filter) and part.order == test.order
    assert p.splits["train"][0].end == p.splits["val"][0].begin
