"""Synthetic rPPG dataset: face videos with a known pulse, generated deterministically from a seed.

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

>>> ds = SyntheticDataset(domain="lab", n_subjects=2, duration_s=4, frame_size=48)
>>> recs = list(ds.records())
>>> [r.id for r in recs], recs[0].frames.read_all().shape
(['s00_r0', 's01_r0'], (120, 48, 48, 3))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import scipy.special
import scipy.signal

from protocols.base import FrameSource, Loader, Record, register_dataset

#: Bumped whenever rendering changes, so cached preprocessed data is not reused across versions.
GENERATOR_VERSION = 2  # 2: the in-band lamp oscillation became its own knob (light_oscillation)

#: Relative R:G:B pulsatile strength of skin (blood-volume pulse signature, de Haan & van Leest 2014).
PULSE_SIGNATURE = (0.33, 0.77, 0.53)

#: Light model constants: colour change per unit of relative level change (colour temperature of
#: the changing light) and the colour deviation of the flicker component from the lamp's colour.
#: Both are small on purpose: a chroma change of even 0.05 % is as large as the pulse's own
#: chrominance at these amplitudes and would defeat every method.
LIGHT = {"colour_shift": 0.002, "flicker_tint": 0.002}

#: Head-motion amplitudes at ``motion=1`` (σ of each trajectory) and trajectory bandwidths (Hz).
MOTION = {
    "translation": 0.003,  # fraction of the frame size
    "roll_deg": 1.0,
    "scale": 0.004,
    "yaw_deg": 1.0,
    "pitch_deg": 0.8,
    "slow_hz": 0.2,  # translation / roll / scale: slow posture changes
    "turn_hz": 0.6,  # yaw / pitch: nods and turns, reaching into the pulse band
}

_CHUNK = 32  # frames rendered together; part of the output definition (noise stream per chunk)

# Roles of the random streams (SeedSequence spawn keys).
_APPEARANCE, _SCENE, _PHYSIO, _MOTION, _LIGHT, _NOISE = range(6)

# Fitzpatrick-like skin albedo anchors (sRGB-ish reflectance in [0, 1]), tone 0 → 1.
_SKIN_ANCHORS = np.array(
    [
        [0.93, 0.79, 0.70],
        [0.87, 0.69, 0.58],
        [0.78, 0.58, 0.45],
        [0.63, 0.44, 0.32],
        [0.46, 0.31, 0.22],
        [0.32, 0.22, 0.16],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Knobs:
    """Generation knobs; see the module docstring for what each imitates."""

    motion: float
    illumination: float
    flicker: float
    light_oscillation: float
    specular: float
    noise_std: float
    jpeg_quality: int
    skin_tone_range: tuple[float, float]
    label_lag_s: float
    respiration: float
    light_level: tuple[float, float]
    pulse_amplitude: tuple[float, float]
    hr_range: tuple[float, float]
    hrv: float


PRESETS: dict[str, Knobs] = {
    # Still subject, even light, mild sensor noise, narrow skin-tone range, uncompressed.
    "lab": Knobs(
        motion=0.0,
        illumination=0.0,
        flicker=0.0,
        light_oscillation=0.0,
        specular=0.0,
        noise_std=0.5,
        jpeg_quality=0,
        skin_tone_range=(0.1, 0.45),
        label_lag_s=0.0,
        respiration=0.1,
        light_level=(0.85, 1.0),
        pulse_amplitude=(0.004, 0.01),
        hr_range=(45.0, 150.0),
        hrv=0.05,
    ),
    # Moving subject, changing and flickering light, speculars, all skin tones, dimmer scenes,
    # more noise. Compression is off by default (see ``jpeg_quality`` in the module docstring).
    "wild": Knobs(
        motion=1.0,
        illumination=0.15,
        flicker=0.005,
        light_oscillation=0.0,
        specular=0.15,
        noise_std=0.75,
        jpeg_quality=0,
        skin_tone_range=(0.0, 1.0),
        label_lag_s=0.1,
        respiration=0.3,
        light_level=(0.6, 1.0),
        pulse_amplitude=(0.004, 0.01),
        hr_range=(45.0, 150.0),
        hrv=0.05,
    ),
}


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"synthetic: knob {name} must be a (lo, hi) pair, got {value!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"synthetic: knob {name} must satisfy lo <= hi, got {value!r}")
    return (lo, hi)


def _resolve_knobs(domain: str, overrides: Mapping[str, Any]) -> Knobs:
    if domain not in PRESETS:
        raise ValueError(f"synthetic: unknown domain {domain!r}; valid: {', '.join(PRESETS)}")
    values = dataclasses.asdict(PRESETS[domain])
    for key, val in overrides.items():
        if val is not None:
            values[key] = val
    for key in ("skin_tone_range", "light_level", "pulse_amplitude", "hr_range"):
        values[key] = _pair(key, values[key])
    for key in ("motion", "illumination", "flicker", "light_oscillation", "specular", "noise_std", "label_lag_s", "respiration", "hrv"):
        v = float(values[key])
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"synthetic: knob {key} must be a finite number >= 0, got {values[key]!r}")
        values[key] = v
    q = values["jpeg_quality"]
    q = 0 if q is None or q is False else int(q)
    if not 0 <= q <= 100:
        raise ValueError(f"synthetic: jpeg_quality must be 0 (off) or 1–100, got {q}")
    values["jpeg_quality"] = q
    lo, hi = values["skin_tone_range"]
    if lo < 0 or hi > 1:
        raise ValueError(f"synthetic: skin_tone_range must lie in [0, 1], got {(lo, hi)}")
    lo, hi = values["light_level"]
    if lo <= 0 or hi > 2:
        raise ValueError(f"synthetic: light_level must lie in (0, 2], got {(lo, hi)}")
    lo, hi = values["pulse_amplitude"]
    if lo <= 0 or hi > 0.05:
        raise ValueError(f"synthetic: pulse_amplitude must lie in (0, 0.05], got {(lo, hi)}")
    lo, hi = values["hr_range"]
    if lo < 30 or hi > 220:
        raise ValueError(f"synthetic: hr_range must lie in [30, 220] bpm, got {(lo, hi)}")
    if values["hrv"] > 0.5:
        raise ValueError(f"synthetic: hrv must be <= 0.5, got {values['hrv']}")
    if values["label_lag_s"] > 2:
        raise ValueError(f"synthetic: label_lag_s must be <= 2 s, got {values['label_lag_s']}")
    return Knobs(**values)


# ------------------------------------------------------------------------------------------------
# Small helpers


def _rng(seed: int, subject: int, role: int, record: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, subject, role, record]))


def _smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-mean, unit-std low-passed Gaussian noise of length ``n`` (smooth random trajectory)."""
    pad = int(3 * fs / cutoff_hz) + 8
    x = rng.standard_normal(n + 2 * pad)
    wn = min(cutoff_hz / (fs / 2), 0.99)
    sos = scipy.signal.butter(order, wn, btype="low", output="sos")
    y = scipy.signal.sosfiltfilt(sos, x)[pad : pad + n]
    sd = y.std()
    return (y - y.mean()) / sd if sd > 0 else np.zeros(n)


def _blur_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-std spatially correlated noise (Gaussian-blurred white noise), float32."""
    x = rng.standard_normal(shape).astype(np.float32)
    if sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 0 else x


def _ellipse(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Anti-aliased filled ellipse mask in [0, 1] (about one pixel of soft edge)."""
    r = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)
    width = 1.0 / max(min(a, b), 1.0)
    return np.clip((1.0 - r) / width + 0.5, 0.0, 1.0).astype(np.float32)


def _skin_colour(tone: float) -> np.ndarray:
    pos = tone * (len(_SKIN_ANCHORS) - 1)
    i = min(int(pos), len(_SKIN_ANCHORS) - 2)
    f = pos - i
    return (1 - f) * _SKIN_ANCHORS[i] + f * _SKIN_ANCHORS[i + 1]


# ------------------------------------------------------------------------------------------------
# Per-record plan: everything that is small (per-frame scalars, appearance parameters)


@dataclass(frozen=True)
class _Plan:
    seed: int
    subject: int
    record: int
    size: int
    fps: float
    n_frames: int
    knobs: Knobs
    # appearance (subject level), in pixels
    tone: float
    head: tuple[float, float, float, float]  # cx, cy, a, b
    light_side: float  # -1 … 1, horizontal direction of the main light
    # per frame
    pulse: np.ndarray  # (T,) video pulse, unit peak-to-peak
    amp: float  # green relative peak-to-peak amplitude
    light: np.ndarray  # (T, 3) light gain per channel
    affine: np.ndarray | None  # (T, 2, 3) head-layer warp, None when still
    yaw: np.ndarray  # (T,)
    pitch: np.ndarray  # (T,)
    spec_gain: np.ndarray  # (T,)


@dataclass
class _Scene:
    static: np.ndarray  # (H, W, 3) background + torso reflectance
    face: np.ndarray  # (H, W, 3) head-layer reflectance (not premultiplied)
    alpha: np.ndarray  # (H, W) head-layer coverage
    pulse_map: np.ndarray  # (H, W, 3) reflectance drop per unit pulse (0 off skin)
    turn_map: np.ndarray  # (H, W, 3) reflectance change per radian of yaw (shading)
    skin: np.ndarray  # (H, W) skin weight in [0, 1] at rest pose (head layer)
    spec_xy: tuple[float, float, float]  # rest position and sigma of the specular spot


def _build_scene(plan: _Plan) -> _Scene:
    """Static textures of one record (deterministic, a few ms at 96×96)."""
    s = plan.size
    rng_app = _rng(plan.seed, plan.subject, _APPEARANCE)
    rng_scn = _rng(plan.seed, plan.subject, _SCENE, plan.record)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    cx, cy, a, b = plan.head

    # --- background: a base colour, low-frequency shading, texture and a few blurred panels
    # Walls and furniture: mostly desaturated (indoor scenes), a little tint.
    base = rng_scn.uniform(0.2, 0.75) * (1 + rng_scn.uniform(-0.12, 0.12, 3))
    lum = 1 + 0.18 * _blur_noise(rng_scn, (s, s), s / 6) + 0.05 * _blur_noise(rng_scn, (s, s), 0.7)
    bg = np.empty((s, s, 3), np.float32)
    for c in range(3):
        bg[..., c] = base[c] * lum * (1 + 0.04 * _blur_noise(rng_scn, (s, s), s / 5))
    for _ in range(int(rng_scn.integers(1, 4))):
        x0, y0 = rng_scn.uniform(0, s, 2)
        w, h = rng_scn.uniform(0.1 * s, 0.5 * s, 2)
        panel = ((np.abs(xx - x0) < w / 2) & (np.abs(yy - y0) < h / 2)).astype(np.float32)
        panel = cv2.GaussianBlur(panel, (0, 0), sigmaX=0.6)
        colour = (rng_scn.uniform(0.1, 0.8) * (1 + rng_scn.uniform(-0.25, 0.25, 3))).astype(np.float32)
        bg = bg * (1 - panel[..., None]) + colour * panel[..., None]
    # --- torso (clothing) below the head
    cloth = (rng_scn.uniform(0.05, 0.7) * (1 + rng_scn.uniform(-0.4, 0.4, 3))).astype(np.float32)
    torso = _ellipse(xx, yy, cx, cy + 1.75 * b, 2.3 * a, 0.95 * b)
    cloth_tex = 1 + 0.08 * _blur_noise(rng_scn, (s, s), 1.5)
    static = bg * (1 - torso[..., None]) + (cloth * cloth_tex[..., None]) * torso[..., None]

    # --- head layer (subject appearance)
    head = _ellipse(xx, yy, cx, cy, a, b)
    hairline = cy - b * rng_app.uniform(0.45, 0.62)
    cap = _ellipse(xx, yy, cx, cy - 0.08 * b, 1.07 * a, 1.03 * b)
    hair_region = np.clip((hairline - yy) / 1.5 + 0.5, 0, 1).astype(np.float32)
    hair = np.clip(cap * hair_region + np.clip(cap - head, 0, 1) * (yy < cy).astype(np.float32), 0, 1)
    alpha = np.maximum(head, hair)
    skin = np.clip(head - hair, 0, 1)

    skin_rgb = _skin_colour(plan.tone).astype(np.float32)
    xn = (xx - cx) / a
    yn = (yy - cy) / b
    shade = 1.0 + 0.12 * plan.light_side * xn - 0.18 * (xn**2 + 0.5 * yn**2)
    tex = 1 + 0.035 * _blur_noise(rng_app, (s, s), 0.6) + 0.05 * _blur_noise(rng_app, (s, s), s / 10)
    face = (skin_rgb * (shade * tex)[..., None]).astype(np.float32)

    hair_rgb = rng_app.uniform(0.03, 0.45) * np.array([1.0, 0.8, 0.6]) * rng_app.uniform(0.8, 1.0, 3)
    hair_rgb = hair_rgb.astype(np.float32)
    hair_tex = 1 + 0.15 * _blur_noise(rng_app, (s, s), 0.8)
    face = face * (1 - hair[..., None]) + (hair_rgb * hair_tex[..., None]) * hair[..., None]

    lip = _ellipse(xx, yy, cx, cy + 0.52 * b, 0.32 * a, 0.075 * b)
    lip_rgb = (skin_rgb * np.array([1.0, 0.72, 0.75])).astype(np.float32)
    face = face * (1 - lip[..., None]) + (lip_rgb * shade[..., None]) * lip[..., None]

    nonskin = np.zeros((s, s), np.float32)
    for side in (-1.0, 1.0):
        ex, ey = cx + side * 0.38 * a, cy - 0.12 * b
        brow = _ellipse(xx, yy, ex, cy - 0.30 * b, 0.25 * a, 0.045 * b)
        eye = _ellipse(xx, yy, ex, ey, 0.21 * a, 0.085 * b)
        iris = _ellipse(xx, yy, ex, ey, 0.075 * b, 0.075 * b) * eye
        sclera = np.array([0.80, 0.78, 0.76], np.float32) * float(shade.mean())
        face = face * (1 - brow[..., None]) + hair_rgb * brow[..., None]
        face = face * (1 - eye[..., None]) + sclera * eye[..., None]
        face = face * (1 - iris[..., None]) + np.array([0.12, 0.08, 0.06], np.float32) * iris[..., None]
        nonskin = np.maximum(nonskin, np.maximum(brow, eye))
    skin = skin * (1 - nonskin)

    # Spatial pulse weight: smooth variation (stronger on cheeks/forehead), mean 1 over the skin.
    wp = np.clip(1 + 0.25 * _blur_noise(rng_app, (s, s), s / 8), 0.3, None) * skin
    wsum = float(skin.sum())
    wp = wp * (wsum / max(float(wp.sum()), 1e-6))
    sig = np.asarray(PULSE_SIGNATURE, np.float32) / PULSE_SIGNATURE[1]
    pulse_map = face * sig * (plan.amp * wp)[..., None]

    # Turning the head changes how much light the face catches (Lambert), globally and as a
    # left-right gradient; per radian of yaw.
    turn_map = face * (0.2 * plan.light_side + 0.5 * xn)[..., None] * (skin + 0.5 * hair)[..., None]

    spec = (cx + 0.15 * a * plan.light_side, cy - 0.22 * b, 0.16 * a)
    return _Scene(
        static=static.astype(np.float32),
        face=face.astype(np.float32),
        alpha=alpha.astype(np.float32),
        pulse_map=pulse_map.astype(np.float32),
        turn_map=turn_map.astype(np.float32),
        skin=skin.astype(np.float32),
        spec_xy=spec,
    )


def _render_chunk(plan: _Plan, scene: _Scene, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) of one chunk (start is a multiple of _CHUNK) as uint8 (t, H, W, 3)."""
    k = plan.knobs
    s = plan.size
    n = stop - start
    v = plan.pulse[start:stop].astype(np.float32)
    if plan.affine is None and k.specular == 0:
        # Still head: everything is per-frame scalars times static maps.
        comp = scene.static * (1 - scene.alpha[..., None]) + scene.face * scene.alpha[..., None]
        pulse = scene.pulse_map * scene.alpha[..., None]
        refl = comp[None] - v[:, None, None, None] * pulse[None]
    else:
        refl = np.empty((n, s, s, 3), np.float32)
        ax = np.arange(s, dtype=np.float32) + 0.5
        sx, sy, ssig = scene.spec_xy
        cx, cy, a, b = plan.head
        for i in range(n):
            t = start + i
            face = scene.face - v[i] * scene.pulse_map
            if k.motion > 0:
                face = face + float(plan.yaw[t]) * scene.turn_map
            g = float(plan.spec_gain[t])
            if g > 0:
                px = sx + 0.8 * a * float(plan.yaw[t])
                py = sy + 0.8 * b * float(plan.pitch[t])
                blob = np.outer(np.exp(-0.5 * ((ax - py) / ssig) ** 2), np.exp(-0.5 * ((ax - px) / (1.3 * ssig)) ** 2))
                face = face + (g * blob * scene.skin)[..., None]
            layer = np.concatenate([face * scene.alpha[..., None], scene.alpha[..., None]], axis=-1)
            if plan.affine is not None:
                layer = cv2.warpAffine(
                    layer, plan.affine[t], (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
                )
            refl[i] = scene.static * (1 - layer[..., 3:4]) + layer[..., :3]
    img = refl * (255.0 * plan.light[start:stop, None, None, :].astype(np.float32))
    if k.noise_std > 0:
        rng = _rng(plan.seed, plan.subject, _NOISE, plan.record * 1_000_003 + start // _CHUNK)
        # Shot + read noise: σ² ∝ (0.2 + 0.8·I/128), i.e. σ = noise_std at mid-grey, less in the dark.
        sigma = np.float32(k.noise_std) * np.sqrt(np.float32(0.2) + np.maximum(img, 0) * np.float32(0.8 / 128))
        img += rng.standard_normal(img.shape, dtype=np.float32) * sigma
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if k.jpeg_quality > 0:
        params = [int(cv2.IMWRITE_JPEG_QUALITY), int(k.jpeg_quality)]
        for i in range(n):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[i, :, :, ::-1]), params)
            if not ok:  # pragma: no cover - cv2 failure
                raise RuntimeError("synthetic: JPEG encoding failed")
            out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return out


class SyntheticFrames(FrameSource):
    """Lazy frames of one synthetic record: rendered chunk by chunk on each iteration.

    Nothing but per-frame scalars is kept; textures are rebuilt (a few ms) per iteration.
    ``skin_mask()`` gives the rest-pose skin weight map (diagnostics and tests).
    """

    def __init__(self, plan: _Plan):
        self._plan = plan
        self.n_frames = plan.n_frames
        self.height = self.width = plan.size

    def _read(self, block: int) -> Iterator[np.ndarray]:
        block = max(int(block), 1)
        scene = _build_scene(self._plan)
        pending: list[np.ndarray] = []
        have = 0
        for c0 in range(0, self.n_frames, _CHUNK):
            chunk = _render_chunk(self._plan, scene, c0, min(c0 + _CHUNK, self.n_frames))
            pending.append(chunk)
            have += len(chunk)
            while have >= block:
                buf = np.concatenate(pending, axis=0) if len(pending) > 1 else pending[0]
                yield buf[:block]
                rest = buf[block:]
                pending, have = ([rest] if len(rest) else []), len(rest)
        if have:
            yield np.concatenate(pending, axis=0)

    def render(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as uint8 (t, H, W, 3), rendering only the chunks needed."""
        start, stop = max(0, int(start)), min(self.n_frames, int(stop))
        if stop <= start:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        scene = _build_scene(self._plan)
        c0 = (start // _CHUNK) * _CHUNK
        parts = [
            _render_chunk(self._plan, scene, c, min(c + _CHUNK, self.n_frames)) for c in range(c0, stop, _CHUNK)
        ]
        return np.concatenate(parts, axis=0)[start - c0 : stop - c0]

    def skin_mask(self) -> np.ndarray:
        """(H, W) float32 skin weight of the head layer at rest pose (eyes, brows, hair excluded)."""
        return _build_scene(self._plan).skin


# ------------------------------------------------------------------------------------------------
# Physiology, motion and light per record


def _simulate_pulse(
    rng: np.random.Generator, knobs: Knobs, n_frames: int, fps: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(video pulse (T,), label (T,), mean HR bpm, respiration Hz); both unit peak-to-peak."""
    import neurokit2 as nk

    hr = float(rng.uniform(*knobs.hr_range))
    fs_sim = max(int(round(8 * fps)), 200)
    t0 = knobs.label_lag_s + 1.0  # frame 0 sits here on the simulation clock
    dur_frames = n_frames / fps
    duration = t0 + dur_frames + 3.0  # tail margin: neurokit flattens the last partial beat
    wave = nk.ppg_simulate(
        duration=duration,
        sampling_rate=fs_sim,
        heart_rate=hr,
        frequency_modulation=knobs.hrv,
        ibi_randomness=knobs.hrv,
        drift=0,
        motion_amplitude=0,
        powerline_amplitude=0,
        burst_amplitude=0,
        burst_number=0,
        random_state=int(rng.integers(0, 2**31 - 1)),
    )
    tau = np.arange(len(wave)) / fs_sim
    p2p = float(np.percentile(wave, 98) - np.percentile(wave, 2)) or 1.0
    wave = (wave - np.median(wave)) / p2p
    resp_hz = float(rng.uniform(0.15, 0.4))
    if knobs.respiration > 0:
        phase = rng.uniform(0, 2 * np.pi)
        r = np.sin(2 * np.pi * resp_hz * tau + phase)
        wave = wave * (1 + 0.5 * knobs.respiration * r) + 0.3 * knobs.respiration * r
    t_frames = t0 + np.arange(n_frames) / fps
    video = np.interp(t_frames, tau, wave)
    label = np.interp(t_frames - knobs.label_lag_s, tau, wave)

    # True mean HR over the video span, from the beats of the clean wave.
    dist = int(0.25 * fs_sim)
    peaks, _ = scipy.signal.find_peaks(wave, distance=dist, prominence=0.3)
    pt = tau[peaks]
    pt = pt[(pt >= t0) & (pt <= t0 + dur_frames)]
    true_hr = 60.0 * (len(pt) - 1) / (pt[-1] - pt[0]) if len(pt) >= 3 else hr
    return video, label, float(true_hr), resp_hz


def _light(rng: np.random.Generator, knobs: Knobs, n: int, fps: float, level: float) -> np.ndarray:
    """(T, 3) per-channel light gain: the lamp's level (drift + steps) plus its flicker."""
    t = np.arange(n) / fps
    tint = 1 + rng.uniform(-0.05, 0.05, 3) if knobs.illumination > 0 else np.ones(3)
    main = np.ones(n)
    if knobs.illumination > 0:
        drift = _smooth_noise(rng, n, fps, 0.08)
        steps = np.zeros(n)
        n_steps = rng.poisson(max(n / fps, 1.0) / 15.0)
        for _ in range(n_steps):
            at = rng.uniform(0, n / fps)
            size = rng.normal(0, 0.5)
            rise = rng.uniform(0.1, 0.5)
            steps += size * scipy.special.expit((t - at) / (rise / 4))  # logistic step, overflow-free
        main = np.clip(1 + knobs.illumination * (0.6 * drift + steps), 0.3, 2.0)
    colour_shift = np.zeros((n, 3))
    if knobs.illumination > 0:  # small colour-temperature change with the level change
        ct = rng.uniform(-1, 1, 3) * LIGHT["colour_shift"]
        colour_shift = (main - 1)[:, None] * ct[None, :]
    light = main[:, None] * tint[None, :] + colour_shift
    if knobs.flicker > 0:
        f_clock = fps * (1 + rng.uniform(-2e-3, 2e-3))  # the camera clock is never exact
        mains = 2 * (50.0 if rng.uniform() < 0.5 else 60.0)
        alias = np.sin(2 * np.pi * mains * np.arange(n) / f_clock + rng.uniform(0, 2 * np.pi))
        tint2 = 1 + rng.uniform(-1, 1, 3) * LIGHT["flicker_tint"]
        light = light + knobs.flicker * 0.5 * alias[:, None] * (tint * tint2)[None, :]
    if knobs.light_oscillation > 0:
        f0 = rng.uniform(0.8, 3.0)
        freq = np.clip(f0 * (1 + 0.08 * _smooth_noise(rng, n, fps, 0.1)), 0.5, 4.0)
        few = np.sin(2 * np.pi * np.cumsum(freq) / fps + rng.uniform(0, 2 * np.pi))
        tint3 = 1 + rng.uniform(-1, 1, 3) * LIGHT["flicker_tint"]
        light = light + knobs.light_oscillation * few[:, None] * (tint * tint3)[None, :]
    return (level * light).astype(np.float64)


def _pose(
    rng: np.random.Generator, knobs: Knobs, n: int, fps: float, size: int, head: tuple[float, float, float, float]
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Head-layer affine warps (T, 2, 3) plus yaw/pitch (radians) per frame."""
    m = knobs.motion
    if m == 0:
        z = np.zeros(n)
        return None, z, z
    cx, cy, _, _ = head
    tx = m * MOTION["translation"] * size * _smooth_noise(rng, n, fps, MOTION["slow_hz"])
    ty = m * MOTION["translation"] * size * _smooth_noise(rng, n, fps, MOTION["slow_hz"])
    roll = m * np.deg2rad(MOTION["roll_deg"]) * _smooth_noise(rng, n, fps, MOTION["slow_hz"])
    scale = 1 + m * MOTION["scale"] * _smooth_noise(rng, n, fps, MOTION["slow_hz"])
    yaw = m * np.deg2rad(MOTION["yaw_deg"]) * _smooth_noise(rng, n, fps, MOTION["turn_hz"])
    pitch = m * np.deg2rad(MOTION["pitch_deg"]) * _smooth_noise(rng, n, fps, MOTION["turn_hz"])
    sx = scale * np.cos(yaw)
    sy = scale * np.cos(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    aff = np.empty((n, 2, 3))
    # x' = R(roll) · diag(sx, sy) · (x - c) + c + t
    aff[:, 0, 0] = cr * sx
    aff[:, 0, 1] = -sr * sy
    aff[:, 1, 0] = sr * sx
    aff[:, 1, 1] = cr * sy
    aff[:, 0, 2] = cx + tx - (aff[:, 0, 0] * cx + aff[:, 0, 1] * cy)
    aff[:, 1, 2] = cy + ty - (aff[:, 1, 0] * cx + aff[:, 1, 1] * cy)
    return aff, yaw, pitch


def _face_box(skin: np.ndarray, affine: np.ndarray | None, size: int) -> tuple[int, int, int, int]:
    """Tight (x, y, w, h) box of the skin region, as the union over all frames' head poses."""
    ys, xs = np.nonzero(skin > 0.5)
    if len(xs) == 0:  # pragma: no cover - geometry always has skin
        return (0, 0, size, size)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    corners = np.concatenate([hull + d for d in ((0, 0), (1, 0), (0, 1), (1, 1))])
    if affine is None:
        moved = corners[None]
    else:
        moved = np.einsum("tij,pj->tpi", affine[:, :, :2], corners) + affine[:, None, :, 2]
    x0 = max(0, int(math.floor(moved[..., 0].min())))
    y0 = max(0, int(math.floor(moved[..., 1].min())))
    x1 = min(size, int(math.ceil(moved[..., 0].max())))
    y1 = min(size, int(math.ceil(moved[..., 1].max())))
    return (x0, y0, x1 - x0, y1 - y0)


# ------------------------------------------------------------------------------------------------


@register_dataset("synthetic")
class SyntheticDataset(Loader):
    """Synthetic face videos with known pulse (see the module docstring for every knob).

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

    version = GENERATOR_VERSION

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
            "version": GENERATOR_VERSION,
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
