"""Legacy (v2) synthetic world: knobs, presets, physiology, light, head pose and face box.

The ``lab`` / ``wild`` domains of the v2 generator (see :mod:`protocols.synthetic.legacy`), kept
for the label-quality lab (tiny 32–64 px renders), ``perf`` and the existing ``synthetic_intra`` /
``synthetic_cross`` protocols. New work uses the physics-first tiers of :mod:`protocols.synthetic.world`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import scipy.special
import scipy.signal

#: Bumped whenever rendering changes, so cached preprocessed data is not reused across versions.
LEGACY_VERSION = 2  # the v2 output, unchanged (part of the legacy cache key); 2: the in-band lamp oscillation became its own knob (light_oscillation)

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


