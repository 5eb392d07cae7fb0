"""Preprocessing throughput against the decoder's own limit (``rppg-bench perf preprocess VIDEO``).

Two measurements of the same video file, each in a fresh Python process so that neither inherits
the other's memory high-water mark:

* **decode-only**: ``cv2.VideoCapture.read()`` in a loop — what the codec and the disk allow, the
  physical limit of any preprocessing that reads this file;
* **ours**: :func:`protocols.preprocess.preprocess_record` on a Record streaming the file through
  :class:`~protocols.datasets._common.VideoFileFrames` — decode, BGR→RGB, face detection (per the
  config), crop, ``INTER_AREA`` resize and the uint8 memmap write into a temporary cache.

Reported: frames/s of both, their ``ratio`` (ours / decode-only; 1 would mean preprocessing costs
nothing beyond decoding) and the peak resident memory of each process (``VmHWM``) together with
its baseline after imports, so the growth attributable to the work is visible. Streaming means the
peak should not grow with the video's length; :func:`write_test_video` makes test videos of any
length from the synthetic generator to check that.

    rppg-bench perf preprocess VIDEO [preprocess.size=72] [preprocess.detection=first] [repeats=1] [mlflow=1]
    python -m protocols.perf make-video OUT.avi [duration_s=60] [codec=MJPG]
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from protocols.preprocess import PreprocessConfig


def write_test_video(
    path: str | Path,
    duration_s: float = 60.0,
    fps: float = 30.0,
    width: int = 640,
    height: int = 480,
    codec: str = "MJPG",
    seed: int = 0,
    domain: str = "lab",
) -> dict[str, Any]:
    """Write a ``width``×``height`` video of a synthetic face (``protocols.synthetic``) to ``path``.

    The generator renders square frames of side ``height``; they are centred on a ``width``-wide
    canvas by replicating the border columns (no rescaling of the face). Frames are rendered and
    written block by block, so memory stays flat for any duration. ``codec`` is a FourCC that the
    installed OpenCV can write (MJPG — a typical compressed AVI —, FFV1 lossless, ...).
    Returns the file's parameters and the record's true mean heart rate.
    """
    from protocols.synthetic import SyntheticDataset

    if width < height:
        raise ValueError(f"width ({width}) must be >= height ({height})")
    ds = SyntheticDataset(domain=domain, n_subjects=1, duration_s=duration_s, fps=fps, frame_size=height, seed=seed)
    rec = next(ds.records())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec!r} video to {path}")
    left = (width - height) // 2
    right = width - height - left
    n = 0
    try:
        for block in rec.frames.iter_blocks(32):
            for frame in block:
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                writer.write(cv2.copyMakeBorder(bgr, 0, 0, left, right, cv2.BORDER_REPLICATE))
                n += 1
    finally:
        writer.release()
    return {"path": str(path), "n_frames": n, "fps": float(fps), "width": width, "height": height, "codec": codec,
            "hr_bpm": float(rec.meta["hr_bpm"]), "duration_s": n / float(fps)}


# -- child processes -----------------------------------------------------------------------------
def _rss_mb() -> float:
    """Peak resident set size of this process so far, MiB.

    Linux: ``VmHWM`` from ``/proc/self/status`` — the high-water mark of this program's own address
    space. ``ru_maxrss`` is not used there because Linux carries it across ``execve``: a child
    started from a large parent (the ``rppg-bench`` CLI has torch loaded) would report the parent's
    size. Elsewhere ``ru_maxrss`` (macOS reports bytes, others KiB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system, all threads) used by this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _result(n: int, wall: float, cpu: float, base: float, **extra: Any) -> dict[str, Any]:
    return {"frames": n, "seconds": wall, "fps": n / wall if wall > 0 else float("nan"), "cpu_seconds": cpu,
            "fps_cpu": n / cpu if cpu > 0 else float("nan"), "baseline_rss_mb": base, "peak_rss_mb": _rss_mb(), **extra}


def _child_decode(video: str) -> dict[str, Any]:
    base = _rss_mb()
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {video}")
    n = 0
    t0, c0 = time.perf_counter(), _cpu_s()
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    dt, dc = time.perf_counter() - t0, _cpu_s() - c0
    cap.release()
    return _result(n, dt, dc, base)


def _child_preprocess(video: str, cfg_json: str, out_dir: str) -> dict[str, Any]:
    from protocols.base import Record
    from protocols.datasets._common import VideoFileFrames
    from protocols.preprocess import haar_cascade, preprocess_record

    cfg = PreprocessConfig(**json.loads(cfg_json))
    haar_cascade()  # load the Haar model before the baseline: a one-off, not per-frame, cost
    base = _rss_mb()
    t0, c0 = time.perf_counter(), _cpu_s()
    frames = VideoFileFrames(video)
    fps = frames.container_fps or 30.0
    rec = Record(id="perf", subject="perf", dataset="perf", fps=fps, frames=frames, ppg=np.zeros(len(frames)))
    cached = preprocess_record(rec, cfg, Path(out_dir) / "perf")
    dt, dc = time.perf_counter() - t0, _cpu_s() - c0
    if cached is None:
        raise SystemExit("preprocessing skipped the video (no face, no_face=skip_record)")
    face = json.loads((cached.path / "meta.json").read_text()).get("face_source")
    return _result(len(cached), dt, dc, base, face_source=face)


def _spawn(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run([sys.executable, "-m", "protocols.perf", "_child", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"perf child {args[0]} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def perf_preprocess(video_path: str | Path, cfg: PreprocessConfig | None = None, repeats: int = 1, workdir: str | Path | None = None) -> dict[str, Any]:
    """Frames/s of our preprocessing vs decode-only on ``video_path``, their ratio and peak RSS.

    Each of the ``repeats`` rounds runs decode-only and then ours, each in a fresh process. Reported:
    the fastest round of each (wall clock: the least disturbed by other load on the machine) and
    their ``ratio``; the same from CPU time (user + system, all threads: ``fps_cpu``/``ratio_cpu``),
    which other processes competing for the cores disturb much less; the median of the per-round
    wall-clock ratios (``ratio_median``); the largest peak RSS seen. ``cfg`` defaults to
    :class:`PreprocessConfig` (72 px, Haar on frame 0).
    """
    video = Path(video_path)
    if not video.is_file():
        raise FileNotFoundError(video)
    cfg = cfg or PreprocessConfig()
    cap = cv2.VideoCapture(str(video))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    container_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    cap.release()
    decode, ours = [], []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for r in range(max(1, int(repeats))):
            decode.append(_spawn(["decode", str(video)]))
            out = Path(tmp) / f"round{r}"
            ours.append(_spawn(["preprocess", str(video), json.dumps(dataclasses.asdict(cfg)), str(out)]))
    d = max(decode, key=lambda x: x["fps"])
    o = max(ours, key=lambda x: x["fps"])
    if d["frames"] != o["frames"]:
        raise RuntimeError(f"decode-only read {d['frames']} frames but preprocessing wrote {o['frames']}")
    return {
        "video": str(video), "width": w, "height": h, "container_fps": container_fps, "n_frames": d["frames"],
        "codec": "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)) if fourcc else "?",
        "preprocess": dataclasses.asdict(cfg), "repeats": len(decode),
        "decode_fps": d["fps"], "preprocess_fps": o["fps"], "ratio": o["fps"] / d["fps"],
        "ratio_median": float(np.median([b["fps"] / a["fps"] for a, b in zip(decode, ours, strict=True)])),
        "decode_fps_cpu": max(x["fps_cpu"] for x in decode), "preprocess_fps_cpu": max(x["fps_cpu"] for x in ours),
        "ratio_cpu": max(x["fps_cpu"] for x in ours) / max(x["fps_cpu"] for x in decode),
        "decode_peak_rss_mb": max(x["peak_rss_mb"] for x in decode), "preprocess_peak_rss_mb": max(x["peak_rss_mb"] for x in ours),
        "decode_baseline_rss_mb": d["baseline_rss_mb"], "preprocess_baseline_rss_mb": o["baseline_rss_mb"],
        "face_source": o.get("face_source"),
    }


def format_report(r: dict[str, Any]) -> str:
    return "\n".join([
        f"video: {r['video']} ({r['width']}x{r['height']}, {r['n_frames']} frames, {r['codec']}, {r['container_fps']:.2f} fps)",
        f"decode-only fps: {r['decode_fps']:.1f}",
        f"preprocess fps: {r['preprocess_fps']:.1f}   (size {r['preprocess']['size']}, detection {r['preprocess']['detection']}, face {r['face_source']})",
        f"ratio: {r['ratio']:.3f}   (median of {r['repeats']} paired rounds {r['ratio_median']:.3f}; CPU-time fps "
        f"{r['preprocess_fps_cpu']:.1f} vs {r['decode_fps_cpu']:.1f}, ratio {r['ratio_cpu']:.3f})",
        f"peak RSS decode-only: {r['decode_peak_rss_mb']:.0f} MiB (baseline {r['decode_baseline_rss_mb']:.0f})",
        f"peak RSS preprocess: {r['preprocess_peak_rss_mb']:.0f} MiB (baseline {r['preprocess_baseline_rss_mb']:.0f})",
    ])


def _parse(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    pos, opts = [], {}
    for a in argv:
        if "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        else:
            pos.append(a)
    return pos, opts


def main(argv: list[str]) -> int:
    """``perf preprocess VIDEO [preprocess.KEY=VALUE ...] [repeats=N] [mlflow=0|1] [uri=...]``."""
    pos, opts = _parse(list(argv))
    if len(pos) != 1:
        print("usage: rppg-bench perf preprocess VIDEO [preprocess.size=72] [repeats=1] [mlflow=1]", file=sys.stderr)
        return 2
    fields = {f.name: f.type for f in dataclasses.fields(PreprocessConfig)}
    kw: dict[str, Any] = {}
    for k, v in opts.items():
        if k.startswith("preprocess."):
            name = k.split(".", 1)[1]
            if name not in fields:
                print(f"unknown preprocess option {name!r}; valid: {sorted(fields)}", file=sys.stderr)
                return 2
            default = getattr(PreprocessConfig(), name)
            kw[name] = (v.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)(v)
    r = perf_preprocess(pos[0], PreprocessConfig(**kw), repeats=int(opts.get("repeats", 1)))
    print(format_report(r))
    if opts.get("mlflow", "1") not in ("0", "false", "no"):
        import mlflow

        from benchmark import tracking

        tracking.setup(opts.get("uri"), "rppg-bench-perf")
        with mlflow.start_run(run_name=f"perf-preprocess/{Path(r['video']).name}"):
            mlflow.log_params({"video": r["video"], "width": r["width"], "height": r["height"], "n_frames": r["n_frames"],
                               "codec": r["codec"], **{f"preprocess.{k}": v for k, v in r["preprocess"].items()}})
            tracking.log_metrics({f"perf/{k}": r[k] for k in ("decode_fps", "preprocess_fps", "ratio", "ratio_median", "ratio_cpu",
                                                            "decode_fps_cpu", "preprocess_fps_cpu", "decode_peak_rss_mb",
                                                            "preprocess_peak_rss_mb", "decode_baseline_rss_mb",
                                                            "preprocess_baseline_rss_mb")})
    return 0


def _child_main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "decode":
        res = _child_decode(argv[1])
    elif mode == "preprocess":
        res = _child_preprocess(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "_child":
        raise SystemExit(_child_main(args[1:]))
    if args and args[0] == "make-video":
        p, o = _parse(args[1:])
        info = write_test_video(p[0], duration_s=float(o.get("duration_s", 60)), codec=o.get("codec", "MJPG"),
                                seed=int(o.get("seed", 0)), fps=float(o.get("fps", 30)))
        print(json.dumps(info))
        raise SystemExit(0)
    if args and args[0] == "preprocess":
        args = args[1:]
    raise SystemExit(main(args))
