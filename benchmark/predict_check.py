"""Acceptance figures of ``rppg-bench predict``, reproducible by one command each.

    python -m benchmark.predict_check videos DIR [n=10] [hrv=true] [width=640] [height=480] [crf=10]
        renders synthetic videos with the v3 world (several tiers/tasks, 60–90 s; hrv: three more
        still 90-s videos with resting-adult HRV, :data:`HRV_CONDITIONS`) and writes
        DIR/<name>.mp4 + DIR/<name>.truth.json (beat times, respiration rate, conditions)
    python -m benchmark.predict_check accuracy DIR [method=pos] [out=DIR/predict] [PredictConfig key=value ...]
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

import dataclasses
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
#: Still videos with larger HRV for the HRV check: the tiers' RSA of 1–4 bpm gives RMSSD of 3–13 ms
#: (resting adults: 19–75 ms, Nunan et al. 2010, Pacing Clin Electrophysiol 33:1407), below what the
#: beat timing of a 30-fps camera resolves; RSA 8–12 bpm gave RMSSD 80–125 ms here (the high end of
#: healthy young adults).
HRV_CONDITIONS = (("pure_like", "still", 90, {"rsa_bpm": (10.0, 10.0)}), ("pure_like", "still", 90, {"rsa_bpm": (8.0, 8.0)}),
                  ("ubfc_like", "still", 90, {"rsa_bpm": (12.0, 12.0), "hr_drift_bpm": (0.0, 0.0)}))


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
                          width: int = 640, height: int = 480, crf: int = 10, knobs: dict[str, Any] | None = None) -> dict[str, Any]:
    """One v3-world record encoded to ``path`` (H.264, crf ``crf``) and its truth beside it (``.truth.json``)."""
    from protocols.synthetic import SyntheticDataset

    ds = SyntheticDataset(tier=tier, n_subjects=1, duration_s=duration_s, width=width, height=height, seed=seed,
                          tasks=(task,), codecs=("none",), **(knobs or {}))
    rec = ds.record(ds.record_ids()[0])
    n = encode_frames(rec.frames.iter_blocks(16), path, rec.fps, width, height, crf)
    truth = {"video": Path(path).name, "tier": tier, "task": task, "seed": seed, "duration_s": duration_s, "fps": rec.fps,
             "frames": n, "hr_bpm": rec.meta["hr_bpm"], "respiration_hz": rec.meta["respiration_hz"],
             "beat_times_s": rec.meta["beat_times_s"], "light_setup": rec.meta["light_setup"],
             "skin_type": rec.meta["skin_type"], "crf": crf, "knobs": knobs or {}}
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
    todo = [(f"v{i:02d}", c) for i, c in enumerate(CONDITIONS[:n])]
    if kw.get("hrv", "true").lower() in ("1", "true", "yes"):
        todo += [(f"h{i:02d}", c) for i, c in enumerate(HRV_CONDITIONS)]
    for j, (tag, (tier, task, dur, *rest)) in enumerate(todo):
        p = out / f"{tag}_{tier}_{task}.mp4"
        if p.is_file() and p.with_suffix(".truth.json").is_file():
            continue
        t0 = time.time()
        seed = 100 + int(tag[1:]) + (0 if tag[0] == "v" else 50)
        tr = write_synthetic_video(p, tier, task, dur, seed=seed, width=int(kw.get("width", 640)),
                                   height=int(kw.get("height", 480)), crf=int(kw.get("crf", 10)), knobs=rest[0] if rest else None)
        print(f"{p.name}: {tr['frames']} frames, HR {tr['hr_bpm']:.1f} bpm, {time.time() - t0:.0f} s", flush=True)
    return 0


def truth_figures(truth: dict[str, Any], duration_s: float) -> dict[str, float]:
    """HR, SDNN, RMSSD of the generator's beats inside the video, and its respiration rate."""
    b = np.asarray(truth["beat_times_s"], dtype=np.float64)
    b = b[(b >= 0) & (b <= duration_s)]
    ibi = np.diff(b) * 1000.0
    return {"hr_bpm": 60000.0 / float(ibi.mean()), "sdnn_ms": float(ibi.std(ddof=1)),
            "rmssd_ms": float(np.sqrt(np.mean(np.diff(ibi) ** 2))), "resp_per_min": 60.0 * float(truth["respiration_hz"])}


def cmd_accuracy(argv: list[str]) -> int:
    """predict on every DIR/*.mp4 with a .truth.json → errors against the truth (table + accuracy.json)."""
    from benchmark.predict import PredictConfig, build_predict_method, predict_video
    from benchmark.registry import discover
    from protocols.synthetic.physio import window_true_hr

    pos, kw = _args(argv)
    if not pos:
        print("usage: python -m benchmark.predict_check accuracy DIR [method=pos] [out=DIR/predict]", file=sys.stderr)
        return 2
    root = Path(pos[0])
    out = Path(kw.get("out", root / "predict"))
    discover()
    info = build_predict_method(kw.get("method", "pos"), {})
    from benchmark.predict import _value

    cfg = PredictConfig(**{k: _value(v) for k, v in kw.items() if k in PredictConfig.__dataclass_fields__})
    rows = []
    for video in sorted(root.glob("*.mp4")):
        tj = video.with_suffix(".truth.json")
        if not tj.is_file():
            continue
        truth = json.loads(tj.read_text())
        s = predict_video(video, info, cfg, out, progress=False)
        tr = truth_figures(truth, s["duration_s"])
        beats = np.asarray(truth["beat_times_s"])
        lines = (out / video.stem / "hr.csv").read_text().splitlines()[1:]
        errs = []
        for ln in lines:
            a, b, hr = (float(x) for x in ln.split(",")[:3])
            t = window_true_hr(beats, a, b)
            if np.isfinite(t):
                errs.append(abs(hr - t))
        h = s["hrv"]
        row = {"video": video.name, "task": truth["task"], "tier": truth["tier"], "duration_s": s["duration_s"],
               "hr_true": round(tr["hr_bpm"], 2), "hr_pred": s["hr_bpm"], "hr_err": round(s["hr_bpm"] - tr["hr_bpm"], 2),
               "window_mae": round(float(np.mean(errs)), 2), "n_windows": len(errs),
               "good_fair_windows": sum(ln.split(",")[3] in ("good", "fair") for ln in lines),
               "sdnn_true": round(tr["sdnn_ms"], 1), "sdnn_pred": h.get("sdnn_ms"),
               "rmssd_true": round(tr["rmssd_ms"], 1), "rmssd_pred": h.get("rmssd_ms"),
               "resp_true": round(tr["resp_per_min"], 1), "resp_pred": s["respiration"]["rate_per_min"],
               "hrv_reliable": h.get("reliable"), "face_coverage": s["face_coverage"], "frames_per_s": s["frames_per_s"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not rows:
        print(f"no videos with .truth.json in {root}", file=sys.stderr)
        return 1
    ok = [abs(r["hr_err"]) <= 2.0 for r in rows]
    rel = lambda p, t: abs(p - t) / t  # noqa: E731
    still = [r for r in rows if r["task"] == "still" and r["sdnn_pred"] is not None]
    within = lambda key: sum(rel(r[f"{key}_pred"], r[f"{key}_true"]) <= 0.15 for r in still)  # noqa: E731
    summary = {
        "method": info.name, "n_videos": len(rows), "median_hr_within_2bpm": f"{sum(ok)}/{len(rows)} ({100 * sum(ok) / len(rows):.0f} %)",
        "median_hr_mae": round(float(np.mean([abs(r["hr_err"]) for r in rows])), 2),
        "window_hr_mae": round(float(np.mean([r["window_mae"] for r in rows])), 2),
        "still_videos_sdnn_within_15pct": f"{within('sdnn')}/{len(still)}", "still_videos_rmssd_within_15pct": f"{within('rmssd')}/{len(still)}",
        "sdnn_rel_err_still": [round(rel(r["sdnn_pred"], r["sdnn_true"]), 2) for r in still],
        "rmssd_rel_err_still": [round(rel(r["rmssd_pred"], r["rmssd_true"]), 2) for r in still],
        "resp_abs_err_per_min": [None if r["resp_pred"] is None else round(abs(r["resp_pred"] - r["resp_true"]), 1) for r in rows],
    }
    print(json.dumps(summary, indent=1))
    (out / "accuracy.json").write_text(json.dumps({"rows": rows, "summary": summary, "config": dataclasses.asdict(cfg)}, indent=1))
    return 0


def loop_video(src: str | Path, dst: str | Path, times: int) -> int:
    """``src`` repeated ``times`` times into ``dst`` without re-encoding (PyAV remux with shifted
    timestamps; every repeat starts at the source's first keyframe). Returns the packet count."""
    import av

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp{dst.suffix}")
    n = 0
    with av.open(str(src)) as first:
        ist = first.streams.video[0]
        span = None
        with av.open(str(tmp), "w") as out:
            ost = out.add_stream_from_template(ist)
            for k in range(times):
                with av.open(str(src)) as inp:
                    last = 0
                    for pkt in inp.demux(inp.streams.video[0]):
                        if pkt.dts is None:
                            continue
                        off = 0 if k == 0 else k * span
                        last = max(last, int(pkt.pts or 0) + int(pkt.duration or 0))
                        pkt.pts = None if pkt.pts is None else pkt.pts + off
                        pkt.dts = pkt.dts + off
                        pkt.stream = ost
                        out.mux(pkt)
                        n += 1
                    if span is None:
                        span = last
    os.replace(tmp, dst)
    return n


def _child_peak(cmd: list[str]) -> tuple[int, float, float]:
    """Run ``cmd`` → (exit status, its peak RSS in MiB, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - t0


def cmd_memory(argv: list[str]) -> int:
    """Peak RSS of predict on a short and a long video (each its own process), frames/s, decode-only frames/s."""
    from protocols.perf import _spawn

    _, kw = _args(argv)
    work = Path(kw.get("workdir", "/tmp/predict_mem"))
    work.mkdir(parents=True, exist_ok=True)
    short_s, long_s = float(kw.get("short_s", 60)), float(kw.get("long_s", 600))
    short = Path(kw["video"]) if "video" in kw else work / "short.mp4"
    if not short.is_file():
        write_synthetic_video(short, "pure_like", "still", short_s, seed=7, crf=int(kw.get("crf", 10)))
    long = work / f"long_x{int(round(long_s / short_s))}.mp4"
    if not long.is_file():
        loop_video(short, long, int(round(long_s / short_s)))
    res = {}
    for name, v in (("short", short), ("long", long)):
        out = work / f"out_{name}"
        rc, peak, wall = _child_peak([sys.executable, "-m", "benchmark.cli", "predict", str(v), f"out={out}", "progress=false"])
        if rc:
            print(f"predict failed on {v} (exit {rc})", file=sys.stderr)
            return 1
        s = json.loads((out / v.stem / "summary.json").read_text())
        dec = _spawn(["decode", str(v)])
        res[name] = {"video": str(v), "frames": s["frames"], "peak_rss_mb": round(peak, 1), "wall_s": round(wall, 1),
                     "predict_frames_per_s": s["frames_per_s"], "decode_frames_per_s": round(dec["fps"], 1),
                     "ratio_to_decode": round(s["frames_per_s"] / dec["fps"], 3)}
        print(json.dumps({name: res[name]}), flush=True)
    res["rss_ratio_long_to_short"] = round(res["long"]["peak_rss_mb"] / res["short"]["peak_rss_mb"], 3)
    print(json.dumps(res, indent=1))
    (work / "memory.json").write_text(json.dumps(res, indent=1))
    return 0


def cmd_live(argv: list[str]) -> int:
    """Feed a video at its frame rate to the live path: lag (backlog), latency, real-time factor."""
    from benchmark.predict import PredictConfig, build_predict_method, predict_live
    from benchmark.registry import discover

    pos, kw = _args(argv)
    if not pos:
        print("usage: python -m benchmark.predict_check live VIDEO [method=pos] [out=DIR]", file=sys.stderr)
        return 2
    discover()
    info = build_predict_method(kw.get("method", "pos"), {})
    s = predict_live(pos[0], info, PredictConfig(), kw.get("out", "/tmp/predict_live"), realtime=True)
    print(json.dumps({"hr_bpm": s["hr_bpm"], **s["live"]}, indent=1))
    return 0


COMMANDS = {"videos": cmd_videos, "accuracy": cmd_accuracy, "memory": cmd_memory, "live": cmd_live}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
