"""Nothing silently wrong at the data boundary (issue 16): content fingerprints of input files, a
cache that rebuilds edited records, safe record ids, bad recordings rejected at load time naming
the file, the cache's atomic publish, and two processes sharing one cache (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import frames_rgb, write_video

from protocols.base import DatasetFormatError, Record, create_dataset
from protocols.fingerprint import MANIFEST, Manifest, RecordFingerprints
from protocols.preprocess import PreprocessConfig, load_cached, preprocess, run_preprocess

CFG = PreprocessConfig(size=8, no_face="full_frame")


def _label(hz: float, n: int = 200, fs: float = 50.0) -> str:
    """A fixed-width CSV (every row has the same byte length, so two signals give equal-size files)."""
    t = np.arange(n) / fs
    return "time,ppg\n" + "\n".join(f"{a:07.3f},{np.sin(2 * np.pi * hz * a):+.5f}" for a in t) + "\n"


def _dataset(root: Path, names=("a", "b"), n_frames: int = 90) -> None:
    for k, name in enumerate(names):
        write_video(root / f"{name}.avi", frames_rgb(n_frames, 24, 24, seed=k), 30.0)
        (root / f"{name}.csv").write_text(_label(1.2 + 0.1 * k))


def _replace_keeping_size_and_mtime(path: Path, text: str) -> None:
    st = path.stat()
    assert len(text.encode()) == st.st_size, "the edit must keep the file size for this test"
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before: only the content differs
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


# -- fingerprints ---------------------------------------------------------------------------------
def test_manifest_hashes_content_and_reuses_hashes_by_stat_key(tmp_path, monkeypatch):
    import protocols.fingerprint as fpm

    f = tmp_path / "data" / "x.csv"
    f.parent.mkdir()
    f.write_text(_label(1.0))
    os.utime(f, ns=(10**18, 10**18))  # an old mtime: not "racy", so the stat key is trusted
    man = Manifest(tmp_path / "data", tmp_path / "m.json")
    d1 = man.digests([f])["x.csv"]
    man.save()
    calls = []
    monkeypatch.setattr(fpm, "file_digest", lambda p: calls.append(p) or "not-read")
    again = Manifest(tmp_path / "data", tmp_path / "m.json")
    # the ctime of a just-written file is racy: back-date the manifest's idea of "hashed at" instead
    entry = again.entries["x.csv"]
    entry[2] = True
    assert again.digests([f])["x.csv"] == d1 and calls == []  # unchanged stat key: not read again
    monkeypatch.undo()
    _replace_keeping_size_and_mtime(f, _label(1.7))
    d2 = Manifest(tmp_path / "data", tmp_path / "m.json").digests([f])["x.csv"]
    assert d2 != d1  # same size and mtime, other content: the ctime change sends it to the content hash
    f.write_text(_label(1.0))
    assert Manifest(tmp_path / "data", None).digests([f])["x.csv"] == d1  # content, not time, is the identity


def test_record_fingerprint_covers_video_and_label_and_ignores_touch(tmp_path):
    root = tmp_path / "data"
    _dataset(root)
    loader = create_dataset("folder", root=root)
    assert loader.source_files("a") == [root / "a.avi", root / "a.csv"]
    fpr = RecordFingerprints(loader, tmp_path / "cache")
    a, b = fpr.get("a"), fpr.get("b")
    fpr.save()
    assert a and b and a != b and (tmp_path / "cache" / loader.key() / MANIFEST).is_file()
    os.utime(root / "a.avi", ns=(1, 1))  # touched, not edited
    assert RecordFingerprints(loader, tmp_path / "cache").get("a") == a
    _replace_keeping_size_and_mtime(root / "a.csv", _label(1.9))
    assert RecordFingerprints(loader, tmp_path / "cache").get("a") != a
    assert RecordFingerprints(create_dataset("synthetic", n_subjects=1, duration_s=2.0), None).get("s00_r0") is None


def test_edited_label_rebuilds_the_cached_record(tmp_path):
    root = tmp_path / "data"
    _dataset(root)
    cache = tmp_path / "cache"
    first = {r.id: r for r in preprocess(create_dataset("folder", root=root), CFG, cache, progress=False)}
    meta_a = first["a"].path / "meta.json"
    fp_a = json.loads(meta_a.read_text())["source_fingerprint"]
    assert fp_a and first["a"].path.parent.parent.name == create_dataset("folder", root=root).key()
    inode_b = (first["b"].path / "frames.npy").stat().st_ino

    _replace_keeping_size_and_mtime(root / "a.csv", _label(2.0))
    summary: dict = {}
    second = {r.id: r for r in preprocess(create_dataset("folder", root=root), CFG, cache, progress=False, summary=summary)}
    assert summary["counts"] == {"done": 1, "cached": 1, "skipped": 0, "failed": 0}
    assert json.loads(meta_a.read_text())["source_fingerprint"] != fp_a
    new_ppg = create_dataset("folder", root=root).record("a").ppg
    np.testing.assert_allclose(second["a"].ppg, new_ppg.astype(np.float32))
    assert not np.allclose(second["a"].ppg, first["a"].ppg)
    assert (second["b"].path / "frames.npy").stat().st_ino == inode_b  # untouched record: reused as is
    assert not list(second["a"].path.parent.glob(".*tmp-*"))  # the replaced record's old folder is gone


# -- record ids -----------------------------------------------------------------------------------
def test_dot_named_videos_get_safe_ids_inside_the_cache(tmp_path):
    root = tmp_path / "data"
    frames = frames_rgb(60, 24, 24)
    for name in ("..mp4", "...mp4", ".hidden.mp4", "ok.mp4"):  # stems ".", "..", ".hidden", "ok"
        write_video(root / name, frames, 30.0, codec="mp4v")
        (root / name).with_suffix(".csv").write_text(_label(1.2))
    cache = tmp_path / "cache"
    loader = create_dataset("folder", root=root)
    assert loader.record_ids() == ["%2E", "%2E%2E", "%2Ehidden", "ok"]
    assert create_dataset("folder", root=root).record_ids() == loader.record_ids()  # deterministic
    out = list(preprocess(loader, CFG, cache, progress=False))
    base = cache / loader.key() / CFG.key()
    assert sorted(r.path.name for r in out) == ["%2E", "%2E%2E", "%2Ehidden", "ok"]
    assert all(r.path.parent == base for r in out)
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == ["%2E", "%2E%2E", "%2Ehidden", "ok"]
    assert sorted(p.name for p in (cache / loader.key()).iterdir() if not p.name.startswith(".")) == [CFG.key()]
    assert [p.name for p in cache.iterdir()] == [loader.key()]  # nothing written beside the dataset's folder
    for bad in (".", "..", "a/b", ".x", ""):
        with pytest.raises(DatasetFormatError, match="not a safe folder name"):
            Record(id=bad, subject="s", dataset="d", fps=30.0, frames=loader.record("ok").frames, ppg=np.zeros(60))


# -- bad recordings -------------------------------------------------------------------------------
def test_grayscale_one_frame_and_short_videos_rejected_at_load_naming_the_file(tmp_path):
    root = tmp_path / "data"
    colour = frames_rgb(90, 24, 24)
    gray = np.repeat(colour[..., 1:2], 3, axis=-1)
    write_video(root / "gray.avi", gray, 30.0)
    write_video(root / "one.avi", colour[:1], 30.0)
    write_video(root / "short.avi", colour[:45], 30.0)  # 1.5 s
    write_video(root / "dark.avi", np.concatenate([np.zeros_like(colour[:3]), colour[3:]]), 30.0)  # black start: colour
    for n in ("gray", "one", "short", "dark"):
        (root / f"{n}.csv").write_text(_label(1.2))
    loader = create_dataset("folder", root=root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" or any other warning on the way
        with pytest.raises(DatasetFormatError, match=r"gray\.avi: grayscale video"):
            loader.record("gray")
        with pytest.raises(DatasetFormatError, match=r"one\.avi: record 'one' has a single frame"):
            loader.record("one")
        with pytest.raises(DatasetFormatError, match=r"short\.avi: record 'short' has 45 frames \(1\.50 s"):
            loader.record("short")
        assert len(loader.record("dark").frames) == 90
    s = run_preprocess("folder", {"root": str(root)}, CFG, tmp_path / "cache", workers=0, progress=False, on_error="skip")
    assert s["counts"] == {"done": 1, "cached": 0, "skipped": 0, "failed": 3}
    assert sorted(s["failed"]) == ["gray", "one", "short"] and "gray.avi" in s["failed"]["gray"]


# -- atomic publish -------------------------------------------------------------------------------
class _SpyFrames:
    """Wraps a frame source; lists the cache folder while frames are being written."""

    def __init__(self, inner, base: Path, seen: list):
        self.inner, self.base, self.seen = inner, base, seen
        self.n_frames, self.height, self.width = inner.n_frames, inner.height, inner.width

    def __len__(self):
        return self.n_frames

    def iter_blocks(self, block=64):
        for b in self.inner.iter_blocks(block):
            if self.base.exists():
                self.seen.append(sorted((p.name, (p / "meta.json").is_file()) for p in self.base.iterdir()
                                        if p.is_dir() and not p.name.startswith(".")))
            yield b


def test_publish_writes_meta_inside_a_hidden_temp_folder_then_renames(tmp_path, monkeypatch):
    import dataclasses

    import protocols.preprocess as pp

    root = tmp_path / "data"
    _dataset(root, names=("a",))
    loader = create_dataset("folder", root=root)
    base = tmp_path / "cache" / loader.key() / CFG.key()
    seen: list = []
    renames: list = []
    def spy(real):
        def publish(src, dst, *a, **k):
            src, dst = Path(src), Path(dst)
            if dst.parent == base and not dst.name.startswith("."):
                renames.append((src.name, sorted(p.name for p in src.iterdir()), src.parent == base))
            return real(src, dst, *a, **k)
        return publish

    monkeypatch.setattr(pp.os, "replace", spy(os.replace))
    monkeypatch.setattr(pp.os, "rename", spy(os.rename))
    rec = loader.record("a")
    rec = dataclasses.replace(rec, frames=_SpyFrames(rec.frames, base, seen))
    (cached,) = preprocess(loader, dataclasses.replace(CFG), tmp_path / "cache", records=[rec], progress=False)
    assert renames, "the record was not published by renaming a finished folder"
    name, content, same_parent = renames[-1]
    assert name.startswith("."), f"temp folder {name!r} is visible to listings"
    assert same_parent  # a rename within one folder (atomic on one file system)
    assert {"meta.json", "frames.npy", "ppg.npy"} <= set(content), f"published before meta was written: {content}"
    assert seen and all(all(done for _, done in listing) for listing in seen), seen  # never a visible half record
    assert cached.path == base / "a" and sorted(p.name for p in cached.path.iterdir()) == ["frames.npy", "meta.json", "ppg.npy"]


# -- two processes, one cache ---------------------------------------------------------------------
def _snapshot(cache: Path) -> dict:
    out = {}
    for meta in sorted(cache.glob("*/*/*/meta.json")):
        d = meta.parent
        out[d.name] = ((d / "frames.npy").read_bytes(), (d / "ppg.npy").read_bytes(), meta.read_bytes())
    return out


def test_two_processes_preprocess_one_cache_at_once(tmp_path):
    root = tmp_path / "data"
    names = [f"r{k}" for k in range(4)]
    _dataset(root, names=names, n_frames=90)
    kw = {"root": str(root)}
    # Haar on every frame: slow enough (~0.1 s per record) for the two runs to overlap
    cfg = "PreprocessConfig(size=24, detection='every', detect_every=1, no_face='full_frame')"
    serial = run_preprocess("folder", kw, PreprocessConfig(size=24, detection="every", detect_every=1, no_face="full_frame"),
                            tmp_path / "serial", workers=0, progress=False)
    assert serial["counts"]["done"] == 4
    shared = tmp_path / "shared"
    script = textwrap.dedent(f"""
        import json, sys, time
        from protocols.preprocess import PreprocessConfig, run_preprocess
        while time.time() < {time.time() + 4.0!r}:   # both start together
            time.sleep(0.005)
        s = run_preprocess("folder", {kw!r}, {cfg}, {str(shared)!r}, workers=0, progress=False)
        print(json.dumps(s["counts"]))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    counts = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    assert all(c["failed"] == 0 and c["done"] + c["cached"] == 4 for c in counts), counts
    assert sum(c["done"] for c in counts) == 4, f"a record was built twice: {counts}"  # the other one waited
    assert _snapshot(shared) == _snapshot(tmp_path / "serial")  # byte-identical to a serial run
    assert not list(shared.glob("*/*/.*tmp-*"))


def test_preprocess_command_on_error_skip_lists_and_exits_nonzero(tmp_path, capsys):
    from benchmark.cli import cmd_preprocess

    root = tmp_path / "data"
    _dataset(root, names=("good",))
    write_video(root / "gray.avi", np.repeat(frames_rgb(90, 24, 24)[..., :1], 3, axis=-1), 30.0)
    (root / "gray.csv").write_text(_label(1.2))
    args = [f"dataset.root={root}", "dataset=folder", f"cache_dir={tmp_path / 'cache'}", "preprocess.size=8",
            "preprocess.no_face=full_frame"]
    with pytest.raises(DatasetFormatError, match=r"gray\.avi: grayscale video"):
        cmd_preprocess(args)  # default on_error=raise
    assert cmd_preprocess([*args, "on_error=skip"]) == 1  # the good record is cached, the bad one listed
    assert "FAILED gray" in capsys.readouterr().err
    assert [m.parent.name for m in (tmp_path / "cache").glob("*/*/*/meta.json")] == ["good"]


def test_several_sizes_from_one_pass_equal_separate_runs(tmp_path, monkeypatch):
    """``also_sizes`` caches several crop sizes from one decode of each video (what ``bench`` uses so
    the synthetic world is rendered once, not once per method size); each size is byte-identical to
    its own single-size run, and a second call finds everything cached."""
    from protocols.datasets._common import VideoFileFrames

    def snap(cache: Path) -> dict:
        return {str(m.parent.relative_to(cache)): tuple(f.read_bytes() for f in (m.parent / "frames.npy", m.parent / "ppg.npy", m))
                for m in sorted(cache.glob("*/*/*/meta.json"))}

    root = tmp_path / "data"
    _dataset(root, names=("a", "b", "c"), n_frames=60)
    kw = {"root": str(root)}
    decodes = []
    real = VideoFileFrames.iter_blocks

    def counting(self, *a, **k):
        decodes.append(1)
        yield from real(self, *a, **k)

    monkeypatch.setattr(VideoFileFrames, "iter_blocks", counting)
    for s in (8, 12, 20):
        run_preprocess("folder", kw, PreprocessConfig(size=s, no_face="full_frame"), tmp_path / "single", progress=False)
    single = len(decodes)  # per video and size: the face search reads the first frame, then the whole video
    decodes.clear()
    got = run_preprocess("folder", kw, PreprocessConfig(size=8, no_face="full_frame"), tmp_path / "multi", progress=False,
                         also_sizes=(12, 20, 8))
    assert got["counts"]["done"] == 3 and len(decodes) * 3 == single == 18  # one pass per video for three sizes
    decodes.clear()
    assert snap(tmp_path / "multi") == snap(tmp_path / "single") and len(snap(tmp_path / "multi")) == 9
    again = run_preprocess("folder", kw, PreprocessConfig(size=8, no_face="full_frame"), tmp_path / "multi", progress=False,
                           also_sizes=(12, 20), workers=2)
    assert again["counts"] == {"done": 0, "cached": 3, "skipped": 0, "failed": 0} and not decodes
    # a size missing from the cache is made (in workers) without redoing the others
    partial = run_preprocess("folder", kw, PreprocessConfig(size=8, no_face="full_frame"), tmp_path / "multi", progress=False,
                             also_sizes=(16,), workers=2)
    assert partial["counts"]["done"] == 3 and len(snap(tmp_path / "multi")) == 12
    assert not list((tmp_path / "multi").glob("*/*/.*tmp-*"))
