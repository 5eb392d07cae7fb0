"""Acceptance figures of ``rppg-bench predict``, reproducible by one command each.

    python -m benchmark.predict_check videos DIR [n=10] [width=640] [height=480] [crf=10]
        renders synthetic videos with the v3 world (several tiers/tasks, 60–90 s) and writes
        DIR/<name>.mp4 + DIR/<name>.truth.json (beat times, respiration rate, conditions)
    python -m benchmark.predict_check accuracy DIR [method=pos] [out=DIR/predict]
        runs ``predict`` on every video and compares with the truth: median HR error, per-window
        HR MAE, SDNN / RMSSD relative errors, respiration error → table on stdout + DIR/accuracy.json
    python -m benchmark.predict_check memory [short_s=60] [long_s=600] [workdir=/tmp/predict_mem]
        peak RSS of predict on a 1-min and a 10-min 640×480 30 fps video (each in its own process),
        predict frames/s and decode-only frames/s
    python -m benchmark.predict_check live VIDEO
        feeds VIDEO at its frame rate to the live path; lag, latency and real-time factor

Truth: the world's ``meta["beat_times_s"]`` are the exact beat times on the video clock (the face
pulse follows them by a constant transit delay, so intervals — HR, SDNN, RMSSD — are what compare);
``meta["respiration_hz"]`` is the breathing rate that modulates the pulse (RSA, amplitude, baseline).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

#: Conditions of the acceptance set: (tier, task, duration s). Still videos first (HRV is checked on them).
CONDITIONS = (
    ("pure_like", "still", 70), ("pure_like", "still", 60), ("ubfc_like", "game", 70), ("pure_like", "still", 60),
    ("pure_like", "talking", 60), ("pure_like", "small_rotation", 60), ("pure_like", "slow_translation", 60),
    ("ubfc_like", "game", 60), ("pure_like", "talking", 60), ("pure_like", "medium_rotation", 60),
    ("mmpd_like", "still", 60), ("pure_like", "fast_translation", 60),
)


def _args(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    pos = [a for a in argv if "=" not in a]
    kw = dict(a.split("=", 1) for a in argv if "=" in a)
    return pos, kw


def encode_frames(blocks: Any, path: str | Path, fps: float, width: int, height: int, crf: int = 10) -> int:
    """Write RGB uint8 blocks (t, H, W, 3) to an H.264 MP4 with PyAV (libx264, yuv420p, ``crf``);
    written to ``path``'s temp sibling, then renamed. Returns the number of frames."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    n = 0
    with av.open(str(tmp), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(int(round(fps * 1000)), 1000))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for block in blocks:
            for f in block:
                for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    out.mux(pkt)
                n += 1
        for pkt in st.encode(None):
            out.mux(pkt)
    os.replace(tmp, path)
    return n


def write_synthetic_video(path: str | Path, tier: str, task: str, duration_s: float, seed: int,
                          width: int = 640, height: int = 480, crf: int = 10) -> dict[str, Any]:
    """One v3-world record encoded to ``path`` (H.264, crf ``crf``) and its truth beside it (``.truth.json``)."""
    from protocols.synthetic import SyntheticDataset

    ds = SyntheticDataset(tier=tier, n_subjects=1, duration_s=duration_s, width=width, height=height, seed=seed,
                          tasks=(task,), codecs=("none",))
    rec = ds.record(ds.record_ids()[0])
    n = encode_frames(rec.frames.iter_blocks(16), path, rec.fps, width, height, crf)
    truth = {"video": Path(path).name, "tier": tier, "task": task, "seed": seed, "duration_s": duration_s, "fps": rec.fps,
             "frames": n, "hr_bpm": rec.meta["hr_bpm"], "respiration_hz": rec.meta["respiration_hz"],
             "beat_times_s": rec.meta["beat_times_s"], "light_setup": rec.meta["light_setup"],
             "skin_type": rec.meta["skin_type"], "crf": crf}
    Path(path).with_suffix(".truth.json").write_text(json.dumps(truth))
    return truth


def cmd_videos(argv: list[str]) -> int:
    pos, kw = _args(argv)
    if not pos:
        print("usage: python -m benchmark.predict_check videos DIR [n=10] [width=640] [height=480] [crf=10]", file=sys.stderr)
        return 2
    out = Path(pos[0])
    out.mkdir(parents=True, exist_ok=True)
    n = int(kw.get("n", 10))
    for i, (tier, task, dur) in enumerate(CONDITIONS[:n]):
        p = out / f"v{i:02d}_{tier}_{task}.mp4"
        if p.is_file() and p.with_suffix(".truth.json").is_file():
            continue
        t0 = time.time()
        tr = write_synthetic_video(p, tier, task, dur, seed=100 + i, width=int(kw.get("width", 640)),
                                   height=int(kw.get("height", 480)), crf=int(kw.get("crf", 10)))
        print(f"{p.name}: {tr['frames']} frames, HR {tr['hr_bpm']:.1f} bpm, {time.time() - t0:.0f} s", flush=True)
    return 0


COMMANDS = {"videos": cmd_videos}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
