"""The v3 synthetic world as a loader: ``SyntheticDataset(tier=...)`` (``dataset=synthetic, tier=...``).

A record is drawn from its tier's knobs (:mod:`protocols.synthetic.tiers`): subject appearance (skin
type, head size, pulse signature) per subject; task, light setup, physiology, camera and codec per
record. Every random quantity comes from ``np.random.SeedSequence([seed, subject, record, role])``
with one stream per role, so changing one knob leaves the other draws unchanged.

Known truth. ``Record.meta`` carries ``beat_times_s`` (beat times on the video clock, seconds from
frame 0 at the *nominal* frame times i/fps), ``hr_bpm`` (true mean HR of the record),
``task``, ``light_setup``, ``skin_type``, ``codec`` and the drawn camera values. The true HR of an
evaluation window [a, b) frames is :func:`protocols.synthetic.physio.window_true_hr` of the beats in
[a/fps, b/fps). The face box (``face_box``) is the inner face at frame 0, as a face detector run on
the first frame would give (the rPPG-Toolbox default); preprocessing enlarges it ×1.5 and keeps it
for the whole record, so head motion moves the face inside the crop.

>>> ds = WorldDataset("ubfc_like", n_subjects=1, duration_s=2, width=96, height=72)
>>> rec = next(ds.records())
>>> rec.frames.read_all().shape, rec.dataset, len(rec.meta["beat_times_s"]) >= 2
((60, 72, 96, 3), 'synthetic_ubfc_like', True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from protocols.base import Loader, Record
from protocols.synthetic import camera, light, motion, physio
from protocols.synthetic.render import Plan, WorldFrames, build_scene, radiance
from protocols.synthetic.skin import PBV
from protocols.synthetic.tiers import KNOBS, resolve_tier

#: v3 world output version (part of the cache key of tier datasets).
WORLD_VERSION = 2  # 2: the physiology is simulated over exactly the record (hr_bpm = mean over the frames)

_APPEAR, _PHYS, _MOT, _LIGHT, _CAM, _CHOICE = range(6)


class WorldDataset(Loader):
    """Synthetic face videos of one tier (see the module docstring).

    Args:
        tier: ``ubfc_like``, ``pure_like``, ``mmpd_like`` or ``train_mix``.
        n_subjects, records_per_subject: record ids ``s03_r1`` (subject ``s03``).
        duration_s, fps: record length (≥ 2 s) and nominal frame rate.
        width, height: rendered frame size (default 320×240; ≥ 48×36).
        seed: base seed.
        **knobs: overrides of the tier's knobs (:data:`~protocols.synthetic.tiers.KNOBS`).
    """

    name = "synthetic"

    def __init__(self, tier: str, n_subjects: int = 10, records_per_subject: int = 1, duration_s: float = 30.0,
                 fps: float = 30.0, width: int = 320, height: int = 240, seed: int = 0, **knobs: Any) -> None:
        self.tier = str(tier)
        self.knobs = resolve_tier(self.tier, knobs)
        checks = {
            "n_subjects": int(n_subjects) == n_subjects and n_subjects >= 1,
            "records_per_subject": int(records_per_subject) == records_per_subject and records_per_subject >= 1,
            "duration_s": math.isfinite(float(duration_s)) and float(duration_s) >= 2.0,
            "fps": math.isfinite(float(fps)) and 5.0 <= float(fps) <= 240.0,
            "width": int(width) == width and width >= 48,
            "height": int(height) == height and height >= 36,
            "seed": int(seed) == seed and seed >= 0,
        }
        allowed = {"n_subjects": "integer >= 1", "records_per_subject": "integer >= 1", "duration_s": ">= 2 s",
                   "fps": "5–240", "width": "integer >= 48", "height": "integer >= 36", "seed": "integer >= 0"}
        given = dict(n_subjects=n_subjects, records_per_subject=records_per_subject, duration_s=duration_s, fps=fps,
                     width=width, height=height, seed=seed)
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"synthetic: {key}={given[key]!r} out of range; allowed: {allowed[key]}")
        self.n_subjects, self.records_per_subject = int(n_subjects), int(records_per_subject)
        self.duration_s, self.fps = float(duration_s), float(fps)
        self.width, self.height, self.seed = int(width), int(height), int(seed)
        self.n_frames = int(round(self.duration_s * self.fps))

    def params(self) -> dict[str, Any]:
        knobs = {k: list(v) if isinstance(v, tuple) else v for k, v in self.knobs.items()}
        return {"version": WORLD_VERSION, "tier": self.tier, "n_subjects": self.n_subjects,
                "records_per_subject": self.records_per_subject, "duration_s": self.duration_s, "fps": self.fps,
                "width": self.width, "height": self.height, "seed": self.seed, "knobs": knobs}

    def key(self) -> str:
        digest = hashlib.sha1(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:10]
        return f"synthetic-{self.tier}-{digest}"

    # -- one record ------------------------------------------------------------------------------
    def _rng(self, subject: int, record: int, role: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, subject, record, role]))

    def _draw(self, rng: np.random.Generator, name: str) -> float:
        lo, hi = self.knobs[name]
        return float(rng.uniform(lo, hi))

    def _choice(self, name: str, index: int, rng: np.random.Generator) -> str:
        opts = self.knobs[name]
        if self.tier == "train_mix":
            return str(opts[int(rng.integers(len(opts)))])
        return str(opts[index % len(opts)])

    def plan(self, subject: int, record: int) -> tuple[Plan, dict[str, Any], np.ndarray]:
        """(render plan, meta, finger-PPG label per frame) of one record."""
        k, n, fps, H, W = self.knobs, self.n_frames, self.fps, self.height, self.width
        app = self._rng(subject, 0, _APPEAR)  # subject level: same look in every record
        skin_type = self._draw(app, "skin_type")
        face_frac = self._draw(app, "face_fraction")
        b = face_frac * H / 2
        a = b * float(app.uniform(0.72, 0.8))
        pbv = PBV * np.exp(float(k["pbv_jitter"]) * app.standard_normal(3))
        amp = self._draw(app, "pulse_amplitude")
        spec = self._draw(app, "specular")
        hr0 = self._draw(app, "hr_bpm")
        idx = subject * self.records_per_subject + record
        pick = self._rng(subject, record, _CHOICE)
        task = self._choice("tasks", record if self.records_per_subject > 1 else idx, pick)
        setup = self._choice("lights", idx // max(1, len(k["tasks"])) + subject, pick)
        codec = self._choice("codecs", idx, pick)

        ph = self._rng(subject, record, _PHYS)
        cam = self._rng(subject, record, _CAM)
        jitter = self._draw(cam, "jitter_ms") / 1000.0
        clock = 1 + cam.uniform(-1e-4, 1e-4)
        times = np.arange(n) / fps * clock + cam.normal(0, 1, n) * jitter
        sim = physio.simulate(ph, self.duration_s, hr_bpm=hr0 + ph.uniform(-5, 5), hr_drift_bpm=self._draw(ph, "hr_drift_bpm"),
                              rsa_bpm=self._draw(ph, "rsa_bpm"), respiration=float(k["respiration"]),
                              label_lag_s=self._draw(ph, "label_lag_s"))
        pulse = sim.at(sim.face, times)
        label = sim.at(sim.label, np.arange(n) / fps)  # the contact sensor has its own exact clock

        mot = self._rng(subject, record, _MOT)
        px_per_mm = 2 * b / motion.HEAD_MM
        bcg_px = self._draw(mot, "bcg_um") / 1000.0 * px_per_mm
        pose = motion.trajectory(mot, task, n, fps, px_per_mm=px_per_mm, scale=self._draw(mot, "motion_scale"), bcg_px=bcg_px,
                                 bcg=sim.at(sim.bcg, times))

        lr = self._rng(subject, record, _LIGHT)
        lux = self._draw(lr, "illuminance_lux")
        sources = light.draw_sources(lr, setup, n, fps, steps_per_min=self._draw(lr, "light_steps_per_min"),
                                     flicker_depth=self._draw(lr, "flicker_depth"))
        sources = [dataclasses.replace(s, rgb=s.rgb * lux) for s in sources]
        binning = (float(k["sensor_height"]) / H) ** 2
        cam_args = {"sensitivity": self._draw(cam, "sensitivity"), "full_well": self._draw(cam, "full_well_e"),
                    "read_noise": self._draw(cam, "read_noise_e"), "binning": max(binning, 1.0), "ccm": self._draw(cam, "ccm")}
        head_xy = (W * (0.5 + app.uniform(-0.05, 0.05)), H * (0.42 + app.uniform(-0.03, 0.03)))
        plan = Plan(width=W, height=H, fps=fps, n_frames=n, seeds=(self.seed, subject, record),
                    head_args={"a": a, "b": b, "fitzpatrick": skin_type, "amp": amp, "pbv": pbv, "specular": spec},
                    head_xy=head_xy, sources=tuple(sources), pose=pose, pulse=pulse.astype(np.float32), frame_times=times,
                    t_exp=np.zeros(n), gain=np.ones(n), wb=np.ones((n, 3)), cam=cam_args, codec=codec,
                    crf=self._draw(cam, "crf"), jpeg_quality=int(round(self._draw(cam, "jpeg_quality"))))
        # Metering: frame-mean radiance per source (rest pose, frame 0) × each source's level over time.
        scene = build_scene(plan)
        per_src = np.stack([radiance(plan, scene, 0, np.eye(len(sources))[:, j : j + 1] @ np.ones((1, 3))).mean((0, 1))
                            for j in range(len(sources))])  # (K, 3): mean radiance per unit level
        mean_rgb = sum(s.rgb * per_src[j][None, :] for j, s in enumerate(sources))
        t_exp, gain, wb = camera.exposure_plan(mean_rgb, fps, sensitivity=cam_args["sensitivity"] * cam_args["binning"],
                                               full_well=cam_args["full_well"] * cam_args["binning"],
                                               ae_s=self._draw(cam, "auto_exposure_s"), awb_s=self._draw(cam, "awb_s"),
                                               daylight_rgb=light.camera_rgb(light.spectrum("daylight", 5500.0)))
        plan = dataclasses.replace(plan, t_exp=t_exp, gain=gain, wb=wb)
        x0, y0, x1, y1 = scene.head.inner_box
        cx, cy = head_xy[0] + pose.tx[0], head_xy[1] + pose.ty[0]
        box = (int(round(cx + x0)), int(round(cy + y0)), int(round(x1 - x0)), int(round(y1 - y0)))
        meta = {"face_box": box, "hr_bpm": sim.hr_bpm, "beat_times_s": [round(float(t), 4) for t in sim.beats],
                "tier": self.tier, "task": task, "light_setup": setup, "skin_type": round(skin_type, 3), "codec": codec,
                "illuminance_lux": round(lux, 1), "pulse_amplitude": amp, "respiration_hz": sim.resp_hz,
                "camera": {kk: round(float(v), 4) for kk, v in cam_args.items()}, "generator": self.key()}
        return plan, meta, label

    def record_ids(self) -> list[str]:
        """Record ids in order (lets preprocessing workers rebuild one record by id)."""
        width = max(2, len(str(self.n_subjects - 1)))
        return [f"s{s:0{width}d}_r{r}" for s in range(self.n_subjects) for r in range(self.records_per_subject)]

    def record(self, record_id: str) -> Record:
        """One record by id (``s03_r1``)."""
        try:
            subj_s, rec_s = record_id.split("_")
            subj, rec = int(subj_s[1:]), int(rec_s[1:])
        except ValueError as exc:
            raise KeyError(f"synthetic: bad record id {record_id!r}; expected like 's03_r1'") from exc
        if not (0 <= subj < self.n_subjects and 0 <= rec < self.records_per_subject) or record_id not in self.record_ids():
            raise KeyError(f"synthetic: no record {record_id!r} in {self.key()}")
        plan, meta, label = self.plan(subj, rec)
        sid = record_id.split("_")[0]
        return Record(id=record_id, subject=sid, dataset=f"synthetic_{self.tier}", fps=self.fps, frames=WorldFrames(plan),
                      ppg=label.astype(np.float64), meta=meta)

    def records(self) -> Iterator[Record]:
        for rid in self.record_ids():
            yield self.record(rid)


__all__ = ["KNOBS", "WORLD_VERSION", "WorldDataset"]
