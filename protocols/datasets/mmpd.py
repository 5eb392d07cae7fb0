"""MMPD (Tang et al., EMBC 2023): 33 subjects × 20 one-minute phone videos with rich metadata.

Layout (reference §A.4; ``McJackTang/MMPD_rPPG_dataset`` README; rPPG-Toolbox ``MMPDLoader.py``)::

    root/subject1/p1_0.mat … p1_19.mat          (k = experiment order)
    ...
    root/subject33/p33_19.mat

Each ``.mat`` (MATLAB v5, ``scipy.io.loadmat``) holds ``video`` (T, H, W, 3) floats in [0, 1]
(320×240; 80×60 in the "mini" release — a resolution variant, not a subset), ``GT_ppg`` and the
strings/ints ``light motion exercise skin_color gender glasser hair_cover makeup``.

Metadata. Each attribute is stored as the toolbox's integer code (so protocol filters match the
toolbox ``INFO`` blocks, e.g. the "simplest" subset ``light [1,2,3], motion [1], exercise [2],
skin_color [3]``) and as the original text under ``<key>_name``:

=========== ===============================================================================
light       LED-low 1, LED-high 2, Incandescent 3, Nature 4
motion      Stationary / Stationary (after exercise) 1, Rotation 2, Talking 3,
            Walking (legacy mislabel "Watching Videos") 4
exercise,   True 1, False 2
glasser,
hair_cover,
makeup
skin_color  3, 4, 5, 6 (Fitzpatrick type)
gender      male 1, female 2
=========== ===============================================================================

Unknown values raise :class:`DatasetFormatError` naming the file, as the toolbox does.

Label clock. MMPD states no sampling rate and no timestamps for ``GT_ppg``, so the only option is the
toolbox's index stretch: the label is resampled over the frames assuming both start and end together.
The length check of the other loaders is therefore impossible here. ``fps`` (30) is stated by the
dataset, not stored in the file.

Memory. MATLAB stores arrays column-major, so in ``video`` the *time* axis varies fastest on disk:
one frame's pixels are spread over the whole variable and no per-frame streaming is possible.
:class:`MatVideoFrames` therefore loads the variable when its frames are first read (in the worker that
preprocesses the record — never when listing records: listing reads only the header via
``scipy.io.whosmat`` and the small variables) and converts it to uint8 in blocks. Peak memory is one
video in its stored dtype (≈ 3.3 GB for a full-resolution 1-min float64 video, ≈ 0.2 GB for "mini").
Record id = file stem (``p1_0``) — unique, unlike the toolbox's cache names built from the attribute
codes, which collide when two videos of a subject share (light, motion, exercise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from protocols.base import DatasetFormatError, FrameSource, Record, register_dataset
from protocols.datasets._common import FileLoader, float_frames_to_uint8, resample_by_index

_FILE = re.compile(r"^p(\d+)_(\d+)\.mat$")
_BOOL = {"true": 1, "false": 2}
CODES: dict[str, dict[str, int]] = {
    "light": {"led-low": 1, "led-high": 2, "incandescent": 3, "nature": 4},
    "motion": {"stationary": 1, "stationary (after exercise)": 1, "rotation": 2, "talking": 3, "walking": 4, "watching videos": 4},
    "exercise": _BOOL,
    "glasser": _BOOL,
    "hair_cover": _BOOL,
    "makeup": _BOOL,
    "gender": {"male": 1, "female": 2},
}
ATTRIBUTES = ("light", "motion", "exercise", "skin_color", "gender", "glasser", "hair_cover", "makeup")


def _text(value: Any) -> str:
    """A MATLAB scalar/char/logical as loaded by scipy → plain text ('LED-low', 'True', '3')."""
    arr = np.asarray(value)
    if arr.size == 0:
        return ""
    item = arr.reshape(-1)[0]
    if isinstance(item, (bool, np.bool_)):
        return "True" if item else "False"
    if isinstance(item, (np.integer, int)):
        return str(int(item))
    if isinstance(item, (np.floating, float)):
        return str(int(item)) if float(item).is_integer() else str(float(item))
    return str(item).strip()


def attribute_codes(raw: dict[str, Any], where: Path) -> dict[str, Any]:
    """Map MMPD attribute values to the toolbox codes (plus ``<key>_name`` text).

    >>> attribute_codes({"light": "LED-high", "motion": "Watching Videos", "exercise": "False",
    ...                  "skin_color": 4, "gender": "female", "glasser": "True", "hair_cover": "False",
    ...                  "makeup": "False"}, Path("p.mat"))["motion"]
    4
    """
    out: dict[str, Any] = {}
    for key in ATTRIBUTES:
        if key not in raw:
            raise DatasetFormatError(where, f"metadata variable {key!r} missing")
        text = _text(raw[key])
        if key == "skin_color":
            try:
                code = int(float(text))
            except ValueError:
                code = -1
            if code not in (3, 4, 5, 6):
                raise DatasetFormatError(where, f"unsupported skin_color {text!r} (expected 3, 4, 5 or 6)")
        else:
            code = CODES[key].get(text.lower(), -1)  # type: ignore[assignment]
            if code == -1:
                raise DatasetFormatError(where, f"unsupported {key} value {text!r}; known: {sorted(CODES[key])}")
        out[key] = code
        out[f"{key}_name"] = text
    return out


class MatVideoFrames(FrameSource):
    """The ``video`` variable of a MATLAB v5 file, loaded on first read, yielded as uint8 blocks."""

    def __init__(self, path: str | Path, key: str, shape: tuple[int, ...]):
        if len(shape) != 4 or shape[-1] != 3:
            raise DatasetFormatError(path, f"variable {key!r} must be (T, H, W, 3), has shape {shape}")
        self.path, self.key = str(path), key
        self.n_frames, self.height, self.width = int(shape[0]), int(shape[1]), int(shape[2])

    def _read(self, block: int) -> Iterator[np.ndarray]:
        import scipy.io

        try:
            video = scipy.io.loadmat(self.path, variable_names=[self.key])[self.key]
        except Exception as e:  # scipy raises several types for damaged files
            raise DatasetFormatError(self.path, f"cannot read variable {self.key!r}: {type(e).__name__}: {e}") from None
        if video.shape != (self.n_frames, self.height, self.width, 3):
            raise DatasetFormatError(self.path, f"{self.key!r} has shape {video.shape}, header said {(self.n_frames, self.height, self.width, 3)}")
        try:
            for start in range(0, self.n_frames, block):
                yield np.ascontiguousarray(float_frames_to_uint8(video[start : start + block]))
        finally:
            del video


@register_dataset("mmpd")
class MMPD(FileLoader):
    layout = "root/subjectN/pN_k.mat (variables video, GT_ppg, light, motion, ...)"

    def __init__(self, root: str | Path | None, fps: float = 30.0):
        if not float(fps) > 0:
            raise ValueError(f"mmpd fps must be > 0, got {fps}")
        super().__init__(root, fps=float(fps))

    def _scan(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for d in self.root.iterdir():
            if d.is_dir() and re.match(r"^subject\d+$", d.name):
                for f in d.iterdir():
                    if _FILE.match(f.name):
                        found[f.stem] = (d.name, f)
        return found

    def _load(self, rid: str, info: Any) -> Record:
        import scipy.io

        subject, path = info
        try:
            header = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
        except Exception as e:
            raise DatasetFormatError(path, f"not a readable MATLAB v5 .mat file: {type(e).__name__}: {e}") from None
        for key in ("video", "GT_ppg"):
            if key not in header:
                raise DatasetFormatError(path, f"variable {key!r} missing (found {sorted(header)})")
        frames = MatVideoFrames(path, "video", header["video"])
        small = scipy.io.loadmat(str(path), variable_names=["GT_ppg", *ATTRIBUTES])
        gt = np.asarray(small["GT_ppg"], dtype=np.float64).T.reshape(-1)
        ppg = resample_by_index(gt, frames.n_frames, path)
        meta = {**attribute_codes(small, path), "experiment": int(_FILE.match(path.name).group(2)),  # type: ignore[union-attr]
                "label_clock": "index (MMPD states no PPG rate)", "label_samples": len(gt)}
        return Record(id=rid, subject=subject, dataset=self.name, fps=self.fps, frames=frames, ppg=ppg, meta=meta)
