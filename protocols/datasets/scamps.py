"""SCAMPS (McDuff et al., NeurIPS 2022 Datasets & Benchmarks): 2,800 synthetic 20-s videos.

Layout (reference §A.5; ``danmcduff/scampsdataset`` README; rPPG-Toolbox ``SCAMPSLoader.py``)::

    root/Train/P000001.mat …     official split folders (the toolbox README expects Train/ Val/ Test/)
    root/Val/…   root/Test/…
    or root/P000001.mat …        one flat folder (meta.split = "all")

Files are MATLAB v7.3, i.e. HDF5, read with ``h5py``. ``Xsub`` is the 240×240 centre face crop as
floats in [0, 1]; ``d_ppg`` is the PPG, frame-aligned by construction (600 frames at 30 fps).
MATLAB writes arrays transposed into HDF5: a MATLAB (T, H, W, 3) array — the layout the toolbox reads
through ``mat73`` — appears to h5py as (3, W, H, T); frames are transposed back block by block.

Label clock: one sample per frame by construction; a different length is an error (no resampling).
``meta.split`` (``train``/``val``/``test``/``all``) lets protocols use the official folders:
``filter: {split: [train]}``. Subject = record id (SCAMPS subjects are synthetic, one per video).
The toolbox still runs face detection on the crop; ``known_face_box=True`` instead declares the whole
crop as the face (``meta.face_box``), so preprocessing skips detection.

Streaming. If the dataset is stored contiguously or chunked along frames, blocks of frames are read
by hyperslab (memory: one block). If its HDF5 chunks span the whole time axis (each chunk holds every
frame of a pixel tile), block reads would decompress every chunk again per block, so the variable is
read once in full instead (memory: one video in its stored dtype, ≈ 0.8 GB for float64).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from protocols.base import DatasetFormatError, FrameSource, Record, register_dataset
from protocols.datasets._common import FileLoader, check_finite, float_frames_to_uint8, h5py_module as _h5py

_SPLITS = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}


class H5VideoFrames(FrameSource):
    """A MATLAB v7.3 video variable stored as (3, W, H, T) in HDF5, yielded as uint8 (t, H, W, 3)."""

    def __init__(self, path: str | Path, key: str, shape: tuple[int, ...], chunks: tuple[int, ...] | None):
        if len(shape) != 4 or shape[0] != 3:
            raise DatasetFormatError(path, f"variable {key!r} must be MATLAB (T, H, W, 3) = HDF5 (3, W, H, T), has HDF5 shape {shape}")
        self.path, self.key = str(path), key
        self.n_frames, self.height, self.width = int(shape[3]), int(shape[2]), int(shape[1])
        self.whole = chunks is not None and chunks[3] * 2 >= shape[3]

    def _read(self, block: int) -> Iterator[np.ndarray]:
        h5py = _h5py()
        with h5py.File(self.path, "r", rdcc_nbytes=64 * 1024**2) as f:
            ds = f[self.key]
            if self.whole:
                data = ds[()]
                for start in range(0, self.n_frames, block):
                    yield np.ascontiguousarray(float_frames_to_uint8(data[..., start : start + block].transpose(3, 2, 1, 0)))
                return
            for start in range(0, self.n_frames, block):
                part = ds[:, :, :, start : start + block]  # (3, W, H, t)
                yield np.ascontiguousarray(float_frames_to_uint8(part.transpose(3, 2, 1, 0)))


@register_dataset("scamps")
class SCAMPS(FileLoader):
    layout = "root/{Train,Val,Test}/P*.mat or root/P*.mat (MATLAB v7.3 with Xsub and d_ppg)"

    def __init__(self, root: str | Path | None, fps: float = 30.0, frames_key: str = "Xsub", label_key: str = "d_ppg", known_face_box: bool = False):
        if not float(fps) > 0:
            raise ValueError(f"scamps fps must be > 0, got {fps}")
        super().__init__(root, fps=float(fps), frames_key=frames_key, label_key=label_key, known_face_box=known_face_box)

    def _scan(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for f in self.root.glob("*.mat"):
            found[f.stem] = ("all", f)
        for d in self.root.iterdir():
            split = _SPLITS.get(d.name.lower())
            if d.is_dir() and split:
                for f in d.glob("*.mat"):
                    if f.stem in found:
                        raise DatasetFormatError(f, f"record {f.stem} appears twice (also {found[f.stem][1]})")
                    found[f.stem] = (split, f)
        return found

    def _load(self, rid: str, info: Any) -> Record:
        h5py = _h5py()
        split, path = info
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise DatasetFormatError(path, f"not a MATLAB v7.3 (HDF5) file: {e}") from None
        with f:
            for key in (self.frames_key, self.label_key):
                if key not in f:
                    raise DatasetFormatError(path, f"variable {key!r} missing (found {sorted(f.keys())})")
            ds = f[self.frames_key]
            frames = H5VideoFrames(path, self.frames_key, ds.shape, ds.chunks)
            ppg = np.asarray(f[self.label_key][()], dtype=np.float64).reshape(-1)
        check_finite(ppg, path, f"label {self.label_key!r}")
        if len(ppg) != frames.n_frames:
            raise DatasetFormatError(path, f"{self.label_key!r} has {len(ppg)} samples but {self.frames_key!r} has {frames.n_frames} frames (SCAMPS labels are frame-aligned)")
        meta: dict[str, Any] = {"split": split, "label_clock": "frame-aligned"}
        if self.known_face_box:
            meta["face_box"] = (0, 0, frames.width, frames.height)
        return Record(id=rid, subject=rid, dataset=self.name, fps=self.fps, frames=frames, ppg=ppg, meta=meta)
