"""Legacy (v2) synthetic rPPG dataset: face videos with a known pulse, generated deterministically from a seed.

Kept as the ``lab`` / ``wild`` domains (``SyntheticDataset(domain=...)``): the label-quality lab renders
tiny 32–64 px records with it, ``perf`` writes test videos with it, and the ``synthetic_intra`` /
``synthetic_cross`` protocols use it until the default benchmark moves to the v3 tiers
(:mod:`protocols.synthetic.world`). Its output is unchanged from generator version 2.

This is the embedded default dataset of the suite (``dataset=synthetic``): it needs no download,
every record is rendered on demand, and the same configuration always yields the same frames.

Physiology
    Per record a mean heart rate is drawn uniformly in ``hr_range`` (default 45–150 bpm, see
    below). The blood-volume wave is simulated with :func:`neurokit2.ppg_simulate` (landmark model
    of onset / systolic peak / dicrotic notch / diastolic peak; heart-rate variability through its
    ``ibi_randomness`` and ``frequency_modulation`` parameters) at 8× the frame rate and sampled
    at the frame times. Respiration (``respiration`` knob) modulates the wave's amplitude and
    baseline at a breathing rate drawn in 0.15–0.4 Hz (respiratory-induced variations).
    The label ``Record.ppg`` is that wave as a finger sensor records it: the same beats, delayed by
    ``label_lag_s`` (the longer pulse-transit time to the finger than to the face).

    The full 45–150 bpm range is the default. Low rates need care downstream: neurokit2's wave has a
    pronounced diastolic peak (second-harmonic power ≈ 30 % of the fundamental, as a real finger
    PPG), so an evaluation band-pass whose lower edge sits at 0.75 Hz halves a 45–55 bpm
    fundamental and the harmonic can win; the suite's evaluation therefore filters 0.6–3.3 Hz and
    searches the HR in 0.75–2.5 Hz (see ``benchmark/evaluate.py``).

Video
    Each frame is a rendered scene: a textured, mostly desaturated background and a clothed torso
    (no pulse), and a head layer that moves as a whole — an elliptical face with static skin
    texture and low-frequency shading, hair, eyebrows and eyes (no pulse) and lips. Skin pixels are
    modulated along the blood-volume colour direction: the relative change of channel c is
    ``-amp * signature_c / signature_G * Wp(x, y) * v(t)``, with signature R:G:B = 0.33:0.77:0.53
    (de Haan & van Leest 2014, the "Pbv" vector also used in Wang et al. 2017), ``v`` the pulse
    normalised to unit peak-to-peak, ``Wp`` a smooth spatial weight of mean 1 over the skin and
    ``amp`` the green-channel peak-to-peak relative amplitude, drawn in ``pulse_amplitude`` and
    reduced for darker skin (melanin absorbs light before it reaches the dermal blood):
    ``amp = U(pulse_amplitude) * (1 - 0.3 * skin_tone)``, so 0.28–1 % by default. More blood →
    darker skin. The scene is multiplied by the light (an RGB gain per frame), then sensor noise is
    added, the frame is quantised to uint8 and optionally JPEG-compressed.

    Scale note: a 96×96 frame has ~40× fewer face pixels than a camera frame, so the spatial mean
    that every method starts from is ~6× noisier at equal per-pixel noise. The noise, motion and
    compression defaults are therefore set for their effect on the face-crop mean, not copied from
    sensor data sheets.

Knobs (each overrides the domain preset; see ``PRESETS`` for the lab/wild values)
    motion
        Scale of head motion (0 = still). At 1 (constants in ``MOTION``): slow posture changes
        (low-passed noise below ~0.2 Hz) of translation (σ = 0.3 % of the frame), in-plane rotation
        (σ = 1°) and scale (σ = 0.4 %), plus nods/turns (yaw σ = 1°, pitch σ = 0.8°, bandwidth
        0.6 Hz, reaching into the pulse band) rendered as foreshortening, a change of how much
        light the face catches (face-only brightness change) and a moving specular spot. Imitates
        a seated subject's small movements; with the static face box it also mixes face and
        background pixels in the crop. Larger values quickly make every method fail.
    illumination
        Relative amplitude of slow light-level changes: a drift (σ = 0.6·knob, < 0.1 Hz) plus
        smoothed steps (someone switching a lamp, a passing cloud or shadow; ~1 per 15 s, size
        ~knob/2), with a small colour-temperature change. Imitates uncontrolled ambient light.
        It changes the whole frame's brightness, which intensity-based methods (GREEN) cannot
        tell from the pulse and chrominance methods (POS, CHROM) cancel.
    flicker
        Relative amplitude of the lamp's mains flicker (100/120 Hz) sampled by a slightly inexact
        frame clock, at half the knob: it aliases to e.g. ~10 Hz for 100 Hz at 30 fps, or to a
        fraction of a Hz for 120 Hz, so it lies outside the pulse band. Its colour equals the
        lamp's (±0.2 %), so chrominance methods cancel it.
    light_oscillation
        Relative amplitude of a wandering in-band oscillation of the same lamp (0.8–3 Hz, e.g. a
        dimmer or a screen lighting the face); 0 in both presets, a stress test. Near the heart
        rate it is nearly coherent with the pulse inside a 1.6-s window, and CHROM's per-window
        α = σ(X_f)/σ(Y_f), computed on band-passed signals, then cancels the pulse's fundamental
        along with it (the output locks onto the 2nd harmonic): with 0.005 on ``synthetic_cross``'s
        wild test set CHROM scored 6.7 bpm while POS, whose projection removes any white
        intensity change exactly, scored 0.25 bpm. GREEN cannot tell it from the pulse at all.
    specular
        Strength of a white-ish glossy highlight on the forehead/nose (reflectance units added to
        the skin). It follows the light and moves/changes with head pose; it carries no pulse.
        Imitates oily/specular skin reflection, the main reason chrominance methods exist.
    noise_std
        Gaussian sensor noise σ in grey levels at mid-grey, scaled by sqrt(0.2 + 0.8·I/128) for
        a pixel of intensity I (shot noise dominates, read noise floor), added before uint8
        quantisation.
    jpeg_quality
        0 = off; otherwise every frame goes through ``cv2.imencode``/``imdecode`` JPEG at this
        quality (4:2:0 chroma subsampling). Imitates compressed video. Off in both presets: at
        96×96 a face crop spans only ~50 8×8 blocks, so block quantisation adds ~2–3× the sensor
        noise to the crop mean even at quality 98 and decides the result for dark skin — a far
        stronger effect than compression has on full-size video. Use it for compression studies.
    skin_tone_range
        (lo, hi) in [0, 1]: Fitzpatrick-like tone, 0 ≈ type I (very light) … 1 ≈ type VI (very
        dark); drawn uniformly per subject. Darker skin: lower intensity and lower pulse amplitude.
    label_lag_s
        Delay of the contact-PPG label after the facial pulse (pulse transit time), seconds.
    respiration
        Strength of respiratory modulation of the pulse wave (amplitude ±knob/2, baseline
        ±knob·0.3 of the pulse peak-to-peak).
    light_level
        (lo, hi) overall light level drawn per record (1 = well lit; low values = dim scenes where
        noise and quantisation weigh more).
    pulse_amplitude
        (lo, hi) green-channel peak-to-peak relative pulse amplitude before the skin-tone factor.
    hr_range
        (lo, hi) range of the mean heart rate in bpm (see "Physiology" for the default).
    hrv
        ``ibi_randomness`` of :func:`neurokit2.ppg_simulate` (beat-to-beat interval jitter);
        ``frequency_modulation`` is set to the same value.

Determinism: every random quantity comes from ``np.random.SeedSequence([seed, subject, role,
record])``, one stream per role (appearance, scene, physiology, motion, light, noise), so changing
one knob leaves the other draws unchanged. Frames are rendered in fixed chunks of 32 frames with
their own noise stream, so any block size of :meth:`FrameSource.iter_blocks` gives the same frames.

>>> ds = LegacyDataset(domain="lab", n_subjects=2, duration_s=4, frame_size=48)
>>> recs = list(ds.records())
>>> [r.id for r in recs], recs[0].frames.read_all().shape
(['s00_r0', 's01_r0'], (120, 48, 48, 3))
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
from protocols.synthetic.legacy_render import SyntheticFrames, _build_scene, _Plan
from protocols.synthetic.legacy_world import (
    _APPEARANCE,
    _LIGHT,
    _MOTION,
    _PHYSIO,
    LEGACY_VERSION,
    _face_box,
    _light,
    _pose,
    _resolve_knobs,
    _rng,
    _simulate_pulse,
)

# ------------------------------------------------------------------------------------------------


class LegacyDataset(Loader):
    """Legacy (v2) synthetic face videos with known pulse (see the module docstring for every knob).

    Built through ``SyntheticDataset(domain=...)`` (registered as ``dataset=synthetic``).

    Args:
        domain: ``"lab"`` or ``"wild"`` preset.
        n_subjects, records_per_subject: how many records (ids ``s03_r0``; subject ``s03``).
        duration_s, fps: record length (≥ 2 s) and frame rate (> 0).
        frame_size: H = W of the rendered frame (≥ 32).
        seed: base seed; the whole dataset is a deterministic function of the arguments.
        **knobs: overrides of the domain preset (``motion``, ``illumination``, ``flicker``,
            ``light_oscillation``, ``specular``, ``noise_std``, ``jpeg_quality``, ``skin_tone_range``, ``label_lag_s``,
            ``respiration``, ``light_level``, ``pulse_amplitude``, ``hr_range``, ``hrv``).
    """

    name = "synthetic"
    version = LEGACY_VERSION

    def __init__(
        self,
        domain: str = "lab",
        n_subjects: int = 10,
        records_per_subject: int = 1,
        duration_s: float = 30.0,
        fps: float = 30.0,
        frame_size: int = 96,
        seed: int = 0,
        *,
        motion: float | None = None,
        illumination: float | None = None,
        flicker: float | None = None,
        light_oscillation: float | None = None,
        specular: float | None = None,
        noise_std: float | None = None,
        jpeg_quality: int | None = None,
        skin_tone_range: tuple[float, float] | None = None,
        label_lag_s: float | None = None,
        respiration: float | None = None,
        light_level: tuple[float, float] | None = None,
        pulse_amplitude: tuple[float, float] | None = None,
        hr_range: tuple[float, float] | None = None,
        hrv: float | None = None,
    ) -> None:
        fps_f = float(fps)
        if not math.isfinite(fps_f) or fps_f <= 0:
            raise ValueError(f"synthetic: fps must be > 0, got {fps}")
        dur = float(duration_s)
        if not math.isfinite(dur) or dur < 2.0:
            raise ValueError(f"synthetic: duration_s must be >= 2 s (a few heart beats), got {duration_s}")
        if int(n_subjects) != n_subjects or int(n_subjects) < 1:
            raise ValueError(f"synthetic: n_subjects must be an integer >= 1, got {n_subjects}")
        if int(records_per_subject) != records_per_subject or int(records_per_subject) < 1:
            raise ValueError(f"synthetic: records_per_subject must be an integer >= 1, got {records_per_subject}")
        if int(frame_size) != frame_size or int(frame_size) < 32:
            raise ValueError(f"synthetic: frame_size must be an integer >= 32, got {frame_size}")
        if int(seed) != seed or int(seed) < 0:
            raise ValueError(f"synthetic: seed must be an integer >= 0, got {seed}")
        self.domain = str(domain)
        overrides = dict(
            motion=motion,
            illumination=illumination,
            flicker=flicker,
            light_oscillation=light_oscillation,
            specular=specular,
            noise_std=noise_std,
            jpeg_quality=jpeg_quality,
            skin_tone_range=skin_tone_range,
            label_lag_s=label_lag_s,
            respiration=respiration,
            light_level=light_level,
            pulse_amplitude=pulse_amplitude,
            hr_range=hr_range,
            hrv=hrv,
        )
        self.knobs = _resolve_knobs(self.domain, overrides)
        self.n_subjects = int(n_subjects)
        self.records_per_subject = int(records_per_subject)
        self.duration_s = dur
        self.fps = fps_f
        self.frame_size = int(frame_size)
        self.seed = int(seed)
        self.n_frames = int(round(dur * fps_f))
        if self.n_frames < 2:
            raise ValueError(f"synthetic: duration_s × fps gives {self.n_frames} frames; need at least 2")

    # -- identity --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Every generation parameter (JSON-friendly)."""
        knobs = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.knobs).items()}
        return {
            "version": LEGACY_VERSION,
            "domain": self.domain,
            "n_subjects": self.n_subjects,
            "records_per_subject": self.records_per_subject,
            "duration_s": self.duration_s,
            "fps": self.fps,
            "frame_size": self.frame_size,
            "seed": self.seed,
            "knobs": knobs,
        }

    def key(self) -> str:
        digest = hashlib.sha1(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:10]
        return f"synthetic-{self.domain}-{digest}"

    # -- records ---------------------------------------------------------------------------------
    def _plan(self, subject: int, record: int) -> tuple[_Plan, dict[str, Any], np.ndarray]:
        k = self.knobs
        s, fps, n = self.frame_size, self.fps, self.n_frames
        rng_app = _rng(self.seed, subject, _APPEARANCE)
        # Appearance draws are taken in a fixed order so records of a subject look alike.
        u_tone = rng_app.uniform()
        tone = k.skin_tone_range[0] + u_tone * (k.skin_tone_range[1] - k.skin_tone_range[0])
        a = rng_app.uniform(0.18, 0.22) * s
        b = a * rng_app.uniform(1.25, 1.4)
        cx = s * (0.5 + rng_app.uniform(-0.04, 0.04))
        cy = s * (0.47 + rng_app.uniform(-0.03, 0.03))
        light_side = float(rng_app.uniform(-1, 1))

        rng_phys = _rng(self.seed, subject, _PHYSIO, record)
        video, label, hr, resp_hz = _simulate_pulse(rng_phys, k, n, fps)
        amp = float(rng_phys.uniform(*k.pulse_amplitude) * (1 - 0.3 * tone))

        rng_light = _rng(self.seed, subject, _LIGHT, record)
        level = float(rng_light.uniform(*k.light_level))
        light = _light(rng_light, k, n, fps, level)

        rng_mot = _rng(self.seed, subject, _MOTION, record)
        head = (float(cx), float(cy), float(a), float(b))
        affine, yaw, pitch = _pose(rng_mot, k, n, fps, s, head)
        spec_gain = np.zeros(n)
        if k.specular > 0:
            spec_gain = k.specular * np.clip(1 + 1.5 * light_side * yaw, 0, None)
        plan = _Plan(
            seed=self.seed,
            subject=subject,
            record=record,
            size=s,
            fps=fps,
            n_frames=n,
            knobs=k,
            tone=float(tone),
            head=head,
            light_side=light_side,
            pulse=video.astype(np.float32),
            amp=amp,
            light=light,
            affine=affine,
            yaw=yaw,
            pitch=pitch,
            spec_gain=spec_gain,
        )
        info = {"hr_bpm": hr, "respiration_hz": resp_hz, "light_level": level}
        return plan, info, label

    def records(self) -> Iterator[Record]:
        width = max(2, len(str(self.n_subjects - 1)))
        knobs = self.params()["knobs"]
        for subj in range(self.n_subjects):
            for rec in range(self.records_per_subject):
                plan, info, label = self._plan(subj, rec)
                frames = SyntheticFrames(plan)
                box = _face_box(_build_scene(plan).skin, plan.affine, plan.size)
                sid = f"s{subj:0{width}d}"
                meta = {
                    "face_box": box,
                    "hr_bpm": info["hr_bpm"],
                    "skin_tone": plan.tone,
                    "domain": self.domain,
                    "pulse_amplitude": plan.amp,
                    "respiration_hz": info["respiration_hz"],
                    "light_level": info["light_level"],
                    "label_lag_s": self.knobs.label_lag_s,
                    "knobs": knobs,
                    "generator": self.key(),
                }
                yield Record(
                    id=f"{sid}_r{rec}",
                    subject=sid,
                    dataset=f"synthetic_{self.domain}",
                    fps=self.fps,
                    frames=frames,
                    ppg=label.astype(np.float64),
                    meta=meta,
                )
