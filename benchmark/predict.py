"""``rppg-bench predict``: the pulse, HR over time, HRV and respiration of your own videos (no label).

    rppg-bench predict PATH [method=pos] [method.KEY=VALUE ...] [method.checkpoint=FILE] [out=DIR]
                            [window_s=10] [stride_s=1] [no_face=error|full_frame|skip_record] [--live]
    rppg-bench predict source=camera:0 [duration_s=60] ...        # a webcam, live

PATH is a video file or a folder of them (extensions of the ``folder`` loader). Per video, into
``DIR/<stem>/`` (default ``DIR`` = ``predictions``):

* ``bvp.csv`` — ``t_s, bvp``: the recovered pulse wave (standardised, band-passed 42–180 bpm);
* ``hr.csv`` — ``t_start_s, t_end_s, hr_bpm, quality, snr_db, prominence_db, face_fraction``: HR on
  sliding windows (``window_s`` long, every ``stride_s``) from the periodogram peak in 0.7–3 Hz.
  Quality indices per window: **spectral SNR** (power within the main lobe of the window's own HR
  peak and its 2nd harmonic over the rest of the band, :func:`benchmark.signal.snr_db`) and **peak
  prominence** (the HR peak's power over the next-highest spectral peak outside its main lobe, dB).
  ``quality``: ``no_face`` when a face was found in under half of the window's seconds, else
  ``good`` (SNR ≥ 3 dB and prominence ≥ 3 dB), ``poor`` (SNR < 0 dB or prominence < 1 dB) or ``fair``.
  The thresholds are heuristics set on synthetic videos (a 10-s window of white noise scores about
  −1 dB SNR and 0–2 dB prominence), not calibrated against real recordings;
* ``summary.json`` — median HR (of the windows with a face),
  respiration rate, HRV (≥ 60 s), frames, fps, face coverage, method, checkpoint and input shape;
* ``report.png`` — first frame with the face box, a BVP excerpt, HR over time shaded by quality,
  beat-to-beat intervals.

Everything of a video is written into a hidden temporary folder that is renamed into place when
complete: a failed video leaves nothing in ``DIR``.

How it is done: streaming, face box, skin mask and the live path in :mod:`benchmark.predict_stream`;
HR windows, their quality, beats, HRV and respiration (with their limits) in :mod:`benchmark.vitals`.
Acceptance figures on synthetic videos with known beats: ``python -m benchmark.predict_check``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import signal as sig
from benchmark.predict_stream import (  # noqa: F401 - re-exported: benchmark.predict is the public entry point
    MAX_FPS, MIN_FPS, MIN_SECONDS, NO_FACE, TRAINING_FREE_BOX_COEF, BVPStream, FaceTracker, MethodInfo, PredictConfig,
    StreamResult, _frames_of, camera_source, detect, fill_non_skin, open_video, paced_frames, run_stream,
)
from benchmark.vitals import (  # noqa: F401
    BAND, GOOD_DB, HRV_MIN_QUALITY, HRV_MIN_S, POOR_PROM_DB, POOR_SNR_DB, RESP_MIN_S, band_for, beat_band, detect_beats,
    hr_windows, hrv, median_hr, prominence_db, respiration_rate,
)
from protocols.base import DatasetFormatError

VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm")


class NoFaceInVideo(DatasetFormatError):
    """No face was detected in the whole video and the no-face policy is ``error``."""


class SkippedVideo(Exception):
    """No face and ``no_face=skip_record``: the video is listed as skipped, not failed."""


def build_predict_method(name: str, overrides: dict[str, Any], size: int | None = None) -> MethodInfo:
    """The method to run: a training-free one as configured, a neural one only with a checkpoint, at
    the checkpoint's input shape (:mod:`benchmark.shape_guard`) unless ``method.frames``/``size`` and
    ``method.allow_shape_change=true`` are given."""
    from benchmark.method import NeuralMethod
    from benchmark.registry import create_method, get_method_class
    from benchmark.shape_guard import checkpoint_shape, shape_text

    cls = get_method_class(name)
    cfg = dict(overrides)
    allow = bool(cfg.pop("allow_shape_change", False))
    if not (isinstance(cls, type) and issubclass(cls, NeuralMethod)):
        if "checkpoint" in cfg:
            raise ValueError(f"method {name!r} is training-free: it takes no method.checkpoint")
        return MethodInfo(create_method(name, **cfg), name, False, None, int(size or 72), (), None, "preprocessing default")
    ckpt = cfg.get("checkpoint")
    if not ckpt:
        raise ValueError(f"method {name!r} must be trained: give method.checkpoint=FILE (a checkpoint of "
                         f"`rppg-bench run method={name}` or a published rPPG-Toolbox .pth)")
    trained, source = checkpoint_shape(ckpt, cls)
    want = {k: cfg.get(k) for k in ("frames", "size")}
    for k in ("frames", "size"):
        if want[k] is not None and int(want[k]) != trained[k] and not allow:
            asked = {**trained, **{kk: int(v) for kk, v in want.items() if v is not None}}
            raise ValueError(f"{ckpt}: trained at {shape_text(trained)} ({source}); method.{k}={want[k]} would run it at "
                             f"{shape_text(asked)}. Drop the override or add method.allow_shape_change=true")
        if want[k] is None:
            cfg[k] = trained[k]
    method = create_method(name, **cfg)
    method.load_checkpoint(ckpt)
    spec = method.input_spec()
    return MethodInfo(method, name, True, spec.frames, spec.size, tuple(spec.transforms), str(ckpt), source,
                      trained.get("fps"))


def analyse(res: StreamResult, cfg: PredictConfig) -> dict[str, Any]:
    fps, bvp = res.fps, res.bvp
    rows = hr_windows(bvp, fps, res.face, cfg.window_s, cfg.stride_s)
    med, med_note = median_hr(rows)
    duration = len(bvp) / fps
    peaks, x, fs = detect_beats(beat_band(bvp, fps, rows), fps)
    out: dict[str, Any] = {"rows": rows, "hr_bpm": round(med, 2), "hr_from": med_note, "peaks_s": peaks / fs, "duration_s": duration,
                           "beat_signal": (x, fs)}
    out["respiration"] = {"rate_per_min": respiration_rate(peaks, x, fs) if duration >= RESP_MIN_S else None,
                          "from": "BVP respiratory modulation: beat-interval (RSA) and beat-amplitude series, spectral fusion, 6–30 /min",
                          "min_duration_s": RESP_MIN_S}
    if duration >= HRV_MIN_S and len(peaks) >= 30:
        ok = float(np.mean([r["quality"] in ("good", "fair") for r in rows])) if rows else 0.0
        out["hrv"] = {**hrv(peaks, fs), "from": "beats of the BVP (×{} interpolation, Elgendi + Kubios fixpeaks)".format(int(fs / fps)),
                      "good_or_fair_windows": round(ok, 3), "reliable": ok >= HRV_MIN_QUALITY,
                      "note": None if ok >= HRV_MIN_QUALITY else
                      f"only {ok:.0%} of the windows are good or fair (< {HRV_MIN_QUALITY:.0%}): beat times are noisy and "
                      "SDNN/RMSSD overestimated"}
    else:
        out["hrv"] = {"skipped": f"needs >= {HRV_MIN_S:g} s and >= 30 beats (got {duration:.1f} s, {len(peaks)} beats)"}
    return out


def _write_outputs(dest: Path, res: StreamResult, ana: dict[str, Any], summary: dict[str, Any], cfg: PredictConfig) -> None:
    """All files of one video into a hidden temp folder beside ``dest``, then renamed to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        t = np.arange(len(res.bvp)) / res.fps
        np.savetxt(tmp / "bvp.csv", np.column_stack([t, res.bvp]), delimiter=",", header="t_s,bvp", comments="", fmt=["%.4f", "%.5f"])
        cols = ["t_start_s", "t_end_s", "hr_bpm", "quality", "snr_db", "prominence_db", "face_fraction"]
        lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in ana["rows"]]
        (tmp / "hr.csv").write_text("\n".join(lines) + "\n")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
        if cfg.report:
            _report(tmp / "report.png", res, ana, summary)
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _report(path: Path, res: StreamResult, ana: dict[str, Any], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(11, 7))
    gs = fig.add_gridspec(2, 3)
    ax0 = fig.add_subplot(gs[0, 0])
    if res.thumb is not None:
        ax0.imshow(res.thumb)
        if res.thumb_box is not None:
            x0, y0, x1, y1 = res.thumb_box
            ax0.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=2))
    ax0.set_title(f"face box (coverage {summary['face_coverage']:.0%})")
    ax0.axis("off")
    ax1 = fig.add_subplot(gs[0, 1:])
    n = min(len(res.bvp), int(10 * res.fps))
    mid = max(0, len(res.bvp) // 2 - n // 2)
    t = np.arange(mid, mid + n) / res.fps
    ax1.plot(t, res.bvp[mid : mid + n], lw=1, label="BVP")
    xb, fb = ana["beat_signal"]
    i0, i1 = int(t[0] * fb), int(t[-1] * fb) + 1 if n else 0
    if i1 > i0:
        tb = np.arange(i0, min(i1, len(xb))) / fb
        yb = sig.standardize(xb[i0 : i0 + len(tb)])
        ax1.plot(tb, yb, lw=0.8, alpha=0.8, label="beat-detection band")
        pk = ana["peaks_s"][(ana["peaks_s"] >= tb[0]) & (ana["peaks_s"] <= tb[-1])]
        if len(pk):
            ax1.plot(pk, np.interp(pk, tb, yb), "r.", ms=6, label="beats")
    ax1.legend(loc="upper right", fontsize=7)
    ax1.set(title="BVP excerpt (10 s) with detected beats", xlabel="time (s)")
    ax2 = fig.add_subplot(gs[1, :2])
    rows = ana["rows"]
    colors = {"good": "#c7e9c0", "fair": "#fdd49e", "poor": "#fcbba1", "no_face": "#d9d9d9"}
    st = rows[1]["t_start_s"] - rows[0]["t_start_s"] if len(rows) > 1 else 1.0
    for r in rows:
        c = (r["t_start_s"] + r["t_end_s"]) / 2
        ax2.axvspan(c - st / 2, c + st / 2, color=colors[r["quality"]], lw=0)
    ax2.plot([(r["t_start_s"] + r["t_end_s"]) / 2 for r in rows], [r["hr_bpm"] for r in rows], "k.-", ms=3)
    from matplotlib.patches import Patch

    ax2.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], loc="upper right", fontsize=7, ncol=4,
               title="window quality", title_fontsize=7)
    ax2.set(title=f"HR over time (median {summary['hr_bpm']} bpm)", xlabel="window centre (s)", ylabel="HR (bpm)")
    ax3 = fig.add_subplot(gs[1, 2])
    pk = np.asarray(ana["peaks_s"])
    if len(pk) > 2:
        ax3.plot(pk[1:], np.diff(pk) * 1000, ".-", ms=3)
    ax3.set(title="beat intervals", xlabel="time (s)", ylabel="ms")
    fig.suptitle(f"{summary['video']} — {summary['method']['name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def summarize(name: str, res: StreamResult, ana: dict[str, Any], info: MethodInfo, cfg: PredictConfig, n_frames: int) -> dict[str, Any]:
    return {
        "video": name, "hr_bpm": ana["hr_bpm"], "hr_from": ana["hr_from"], "respiration": ana["respiration"], "hrv": ana["hrv"],
        "frames": n_frames, "fps": res.fps, "duration_s": round(n_frames / res.fps, 3), "frame_size": [res.frame_height, res.frame_width],
        "face_coverage": round(res.coverage, 4), "no_face_policy": cfg.no_face, "box_coef": res.box_coef,
        "no_face_seconds": [i for i, f in enumerate(res.face[:: max(1, int(round(res.fps)))]) if not f],
        "method": {"name": info.name, "kind": "neural" if info.neural else "unsupervised", "config": _method_cfg(info.method)},
        "checkpoint": info.checkpoint, "input_shape": info.shape(), "trained_fps": info.trained_fps,
        "warnings": [w for w in [fps_warning(info, res.fps)] if w],
        "window_s": cfg.window_s, "stride_s": cfg.stride_s, "band_hz": list(band_for(res.fps)),
        "seconds": round(res.seconds, 2), "frames_per_s": round(n_frames / res.seconds, 1) if res.seconds > 0 else None,
    }


def _method_cfg(method: Any) -> dict[str, Any]:
    import dataclasses

    try:
        return json.loads(json.dumps(dataclasses.asdict(method.cfg), default=str))
    except TypeError:
        return {}


def predict_video(path: str | Path, info: MethodInfo, cfg: PredictConfig, out_root: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Run one video end to end and write ``out_root/<stem>/``; returns its summary."""
    from tqdm.auto import tqdm

    vid = open_video(path, cfg.fps)
    bar = tqdm(total=vid.n_frames, desc=Path(path).name, unit="frame", disable=not progress, leave=False)
    try:
        res = run_stream(_frames_of(vid.blocks()), vid.fps, vid.height, vid.width, info, cfg, progress=bar, where=str(path))
    finally:
        bar.close()
    _check_face(res, cfg, path)
    ana = analyse(res, cfg)
    summary = summarize(Path(path).name, res, ana, info, cfg, len(res.bvp))
    _write_outputs(Path(out_root) / Path(path).stem, res, ana, summary, cfg)
    return summary


def fps_warning(info: MethodInfo, fps: float) -> str | None:
    """A note when a checkpoint trained at one frame rate runs on video at another (> 10 % apart):
    its temporal filters then see other pulse frequencies. Frames are not resampled.

    >>> fps_warning(MethodInfo(None, "m", True, 128, 72, (), "c.pt", "", 30.0), 15.0)
    'checkpoint c.pt was trained on 30 fps video; this video is 15 fps (frames are not resampled)'
    """
    if not info.trained_fps or abs(fps - info.trained_fps) <= 0.1 * info.trained_fps:
        return None
    return f"checkpoint {info.checkpoint} was trained on {info.trained_fps:g} fps video; this video is {fps:g} fps (frames are not resampled)"


def _check_face(res: StreamResult, cfg: PredictConfig, path: Any) -> None:
    if res.coverage > 0:
        return
    what = f"no face found in any of the {len(np.asarray(res.face)[:: max(1, int(round(res.fps * cfg.detect_every_s)))])} detection attempts (one per {cfg.detect_every_s:g} s)"
    if cfg.no_face == "error":
        raise NoFaceInVideo(path, f"{what}; no_face=error (no_face=full_frame uses the whole frame, skip_record skips it)")
    if cfg.no_face == "skip_record":
        raise SkippedVideo(f"{path}: {what} (no_face=skip_record)")


def summary_line(s: dict[str, Any]) -> str:
    h = s["hrv"]
    hrv_txt = (f"SDNN {h['sdnn_ms']} ms, RMSSD {h['rmssd_ms']} ms" + ("" if h.get("reliable") else " (unreliable: noisy beats)")
               if "sdnn_ms" in h else "HRV: too short")
    rr = s["respiration"]["rate_per_min"]
    warn = "".join(f"\n  warning: {w}" for w in s.get("warnings", []))
    return (f"{s['video']}: HR {s['hr_bpm']} bpm, respiration {rr if rr is not None else '-'} /min, {hrv_txt}, "
            f"face {s['face_coverage']:.0%}, {s['frames']} frames @ {s['fps']:g} fps, {s['frames_per_s']} frames/s" + warn)


def predict_live(source: str, info: MethodInfo, cfg: PredictConfig, out_root: str | Path, *, realtime: bool = True,
                 duration_s: float | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Live path: HR of the last ``window_s`` printed every ``stride_s``; returns the summary with
    ``live`` figures (latency, backlog, real-time factor)."""
    if source.startswith("camera:"):
        factory, fps, h, w = camera_source(source, duration_s)
        name = source.replace(":", "_")
    else:
        vid = open_video(source, cfg.fps)
        factory, fps, h, w, name = (lambda: _frames_of(vid.blocks())), vid.fps, vid.height, vid.width, Path(source).name
    stats: dict[str, Any] = {}
    win = int(round(cfg.window_s * fps))
    step = max(1, int(round(cfg.stride_s * fps)))
    latencies: list[float] = []

    def on_chunk(start: int, stop: int, y: np.ndarray) -> None:
        band = band_for(fps)
        hr = sig.hr_spectrum(y, fps, band)
        snr, prom = sig.snr_db(y, fps, hr, band), prominence_db(y, fps, band)
        lat = time.perf_counter() - stats["arrival"][stop - 1]
        latencies.append(lat)
        q = "good" if snr >= GOOD_DB and prom >= GOOD_DB else ("poor" if snr < POOR_SNR_DB or prom < POOR_PROM_DB else "fair")
        echo(f"[live] t={stop / fps:7.1f}s HR {hr:6.1f} bpm ({q}, SNR {snr:5.1f} dB) latency {lat * 1000:6.0f} ms "
             f"backlog {stats['backlog'][-1] if stats['backlog'] else 0} frames")

    t0 = time.perf_counter()
    frames = paced_frames(factory, fps, realtime and not source.startswith("camera:"), stats)
    res = run_stream(frames, fps, h, w, info, cfg, chunk=win, overlap=win - step, on_chunk=on_chunk, where=source)
    wall = time.perf_counter() - t0
    _check_face(res, cfg, source)
    ana = analyse(res, cfg)
    summary = summarize(name, res, ana, info, cfg, len(res.bvp))
    media = len(res.bvp) / fps
    backlog = np.asarray(stats.get("backlog", [0]))
    half = len(backlog) // 2
    summary["live"] = {
        "latency_ms_median": round(float(np.median(latencies)) * 1000, 1) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)) * 1000, 1) if latencies else None,
        "backlog_frames_max": int(backlog.max()) if len(backlog) else 0,
        "backlog_frames_mean_first_half": round(float(backlog[:half].mean()), 2) if half else 0.0,
        "backlog_frames_mean_second_half": round(float(backlog[half:].mean()), 2) if half else 0.0,
        "wall_s": round(wall, 2), "media_s": round(media, 2),
        "busy_s": round(res.seconds - stats.get("wait_s", 0.0), 2),
        # media seconds per second of work (decode in the reader thread not counted: a camera decodes too)
        "real_time_factor": round(media / max(res.seconds - stats.get("wait_s", 0.0), 1e-9), 2),
        "realtime_fed": bool(realtime),
    }
    _write_outputs(Path(out_root) / Path(name).stem, res, ana, summary, cfg)
    return summary


USAGE = ("usage: rppg-bench predict PATH|source=camera:N [method=pos] [method.KEY=VALUE ...] [method.checkpoint=FILE] "
         "[out=DIR] [window_s=10] [stride_s=1] [no_face=error|full_frame|skip_record] [fps=F] [report=true] [--live] "
         "[duration_s=S]")


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_args(argv: Sequence[str]) -> dict[str, Any]:
    args: dict[str, Any] = {"paths": [], "method": "pos", "method_cfg": {}, "out": "predictions", "live": False,
                            "source": None, "duration_s": None, "progress": True, "cfg": {}}
    fields = set(PredictConfig.__dataclass_fields__)
    for a in argv:
        if a in ("--live", "live=true"):
            args["live"] = True
        elif "=" not in a:
            args["paths"].append(a)
        else:
            k, v = a.split("=", 1)
            if k == "method":
                args["method"] = v
            elif k.startswith("method."):
                args["method_cfg"][k[len("method."):]] = _value(v)
            elif k in ("out", "source"):
                args[k] = v
            elif k == "duration_s":
                args[k] = float(v)
            elif k == "progress":
                args[k] = bool(_value(v))
            elif k in fields:
                args["cfg"][k] = _value(v)
            else:
                raise ValueError(f"predict: unknown argument {k!r}; valid: method, method.KEY, out, source, duration_s, "
                                 f"progress, --live, {', '.join(sorted(fields))}")
    return args


def list_videos(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            vids = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTS)
            if not vids:
                raise FileNotFoundError(f"{p}: no video files ({', '.join(VIDEO_EXTS)})")
            out.extend(vids)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def main(argv: Sequence[str]) -> int:
    """Pulse, HR over time, HRV and respiration of your own videos (no label needed); see
    ``benchmark/predict.py`` for the outputs. A folder run goes on past a bad file and lists it at the
    end; the exit status is 1 if any file failed."""
    args = parse_args(argv)
    if not args["paths"] and not args["source"]:
        print(USAGE, file=sys.stderr)
        return 2
    cfg = PredictConfig(**args["cfg"])
    info = build_predict_method(args["method"], args["method_cfg"], cfg.size)
    print(f"[predict] method {info.name}, input {info.shape()}" + (f", checkpoint {info.checkpoint}" if info.checkpoint else ""))
    out = Path(args["out"])
    if args["source"]:
        s = predict_live(args["source"], info, cfg, out, duration_s=args["duration_s"])
        print(summary_line(s))
        print(f"[live] {json.dumps(s['live'])}")
        return 0
    videos = list_videos(args["paths"])
    stems: dict[str, list[str]] = {}
    for v in videos:
        stems.setdefault(v.stem, []).append(str(v))
    clash = {k: v for k, v in stems.items() if len(v) > 1}
    if clash:  # each video writes DIR/<stem>/: two with one stem would overwrite each other
        raise ValueError("videos with the same name would write the same output folder: "
                         + "; ".join(", ".join(v) for v in clash.values()) + " — rename one or run them separately")
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    from benchmark.settings import one_line

    for v in videos:
        try:
            if args["live"]:
                s = predict_live(str(v), info, cfg, out)
                print(f"[live] {json.dumps(s['live'])}")
            else:
                s = predict_video(v, info, cfg, out, progress=args["progress"])
            print(summary_line(s), flush=True)
        except SkippedVideo as e:
            skipped[str(v)] = str(e)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one bad file must not stop a folder run; listed below
            failed[str(v)] = one_line(e)
            print(f"FAILED {v}: {failed[str(v)]}", file=sys.stderr, flush=True)
    done = len(videos) - len(failed) - len(skipped)
    print(f"[predict] {done} of {len(videos)} video(s) written to {out}/" + (f"; {len(skipped)} skipped" if skipped else "")
          + (f"; {len(failed)} failed" if failed else ""))
    for v, why in skipped.items():
        print(f"  skipped {why}")
    for v, why in failed.items():
        print(f"  FAILED {v}: {why}", file=sys.stderr)
    return 1 if failed else 0
