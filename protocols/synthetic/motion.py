"""Head motion in the v3 synthetic world: rigid pose per recording task, talking, BCG.

Units: translation in millimetres (converted to pixels with the head's size in the frame: the
head from chin to crown is taken as 230 mm, the adult mean, Farkas 1994), angles in degrees.
``motion_scale`` multiplies every task amplitude (1 = as recorded in the datasets).

Tasks (the recording protocols of public datasets)
    still
        Seated, looking at the camera: postural sway, translation σ 2 mm and rotation σ 1° below
        0.3 Hz (seated sway of a few mm; e.g. Kerr et al. 2006 report seated head displacement of
        a few mm).
    game
        Seated, playing a time-pressured game on a screen (UBFC-rPPG, Bobbia et al. 2019): sway as
        ``still`` plus glances (yaw/pitch σ 3°, up to 1 Hz).
    talking
        PURE task 2 / MMPD talking: sway, speech-related head nods (σ 2.5°, 0.2–2 Hz, Hadar et
        al. 1983) and jaw opening at the syllable rate (4–5 Hz syllables, Ding et al. 2017) with
        pauses, amplitude 4–10 mm (conversational jaw opening).
    slow_translation / fast_translation
        PURE tasks 3–4: moving the head parallel to the camera following a target; mean speed
        7 % / 14 % of the face height per second (Stricker et al. 2014), here a smooth zig-zag of
        ±20 mm (slow) / ±30 mm (fast) horizontally with a smaller vertical part.
    small_rotation / medium_rotation
        PURE tasks 5–6: turning the head towards targets ≈ 20° / 35° away; yaw (and some pitch)
        moves between targets in 0.5–1.5 s, dwells 1–3 s.
    walking
        MMPD walking: vertical bounce at the step frequency (1.6–2.0 Hz, inside the pulse band;
        cadence 100–120 steps/min) of 10–25 mm relative to the camera, lateral sway at half that
        frequency, pitch ±2° (head stabilisation while walking, Hirasaki et al. 1999).
    head_turning
        MMPD head rotation: yaw ±30–45° at 0.2–0.5 Hz with pitch ±5°.

BCG (all tasks): vertical head displacement following the pulse's systolic rise, peak-to-peak
``bcg_um`` micrometres (head BCG of order 0.1 mm; Balakrishnan et al., CVPR 2013) — sub-pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.synthetic.light import _smooth

TASKS = ("still", "game", "talking", "slow_translation", "fast_translation", "small_rotation", "medium_rotation", "walking", "head_turning")

HEAD_MM = 230.0  # chin to crown


@dataclass(frozen=True)
class Pose:
    """Per-frame rigid pose (pixels, radians) and jaw opening (pixels)."""

    tx: np.ndarray
    ty: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    scale: np.ndarray
    jaw: np.ndarray


def _zigzag(rng: np.random.Generator, t: np.ndarray, amp: float, speed: float) -> np.ndarray:
    """Smooth back-and-forth of amplitude ``amp`` at mean speed ``speed`` (units/s)."""
    f = speed / (4 * amp)
    phase = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
    return amp * np.sin(phase)


def _targets(rng: np.random.Generator, t: np.ndarray, amp: float) -> np.ndarray:
    """Piecewise dwell-and-move trajectory between targets within ±amp (smooth moves)."""
    out = np.zeros_like(t)
    cur, at = 0.0, rng.uniform(0.5, 2.0)
    out[:] = cur
    while at < t[-1]:
        nxt = rng.uniform(-amp, amp)
        nxt = nxt if abs(nxt - cur) > 0.4 * amp else -np.sign(cur or 1.0) * amp * rng.uniform(0.6, 1.0)
        dur = rng.uniform(0.5, 1.5)
        s = np.clip((t - at) / dur, 0, 1)
        blend = s * s * (3 - 2 * s)
        sel = t >= at
        out[sel] = cur + (nxt - cur) * blend[sel]
        cur, at = nxt, at + dur + rng.uniform(1.0, 3.0)
    return out


def trajectory(
    rng: np.random.Generator, task: str, n: int, fps: float, *, px_per_mm: float, scale: float, bcg_px: float, bcg: np.ndarray
) -> Pose:
    """Rigid pose, jaw and BCG per frame for one record of ``task``."""
    if task not in TASKS:
        raise ValueError(f"synthetic: unknown motion task {task!r}; valid: {', '.join(TASKS)}")
    t = np.arange(n) / fps
    d = np.deg2rad
    tx = scale * 2.0 * _smooth(rng, n, fps, 0.3)
    ty = scale * 2.0 * _smooth(rng, n, fps, 0.3)
    yaw = scale * d(1.0) * _smooth(rng, n, fps, 0.3)
    pitch = scale * d(1.0) * _smooth(rng, n, fps, 0.3)
    roll = scale * d(0.7) * _smooth(rng, n, fps, 0.2)
    zoom = 1 + scale * 0.005 * _smooth(rng, n, fps, 0.2)
    jaw = np.zeros(n)
    if task == "game":
        yaw += scale * d(3.0) * _smooth(rng, n, fps, 1.0)
        pitch += scale * d(3.0) * _smooth(rng, n, fps, 1.0)
    elif task == "talking":
        yaw += scale * d(2.5) * _smooth(rng, n, fps, 2.0)
        pitch += scale * d(2.5) * _smooth(rng, n, fps, 2.0)
        syll = rng.uniform(4.0, 5.0)
        env = (_smooth(rng, n, fps, 0.5) > -0.3).astype(float)  # speaking vs pauses
        env = np.convolve(env, np.ones(5) / 5, mode="same")
        ph = 2 * np.pi * np.cumsum(syll * (1 + 0.25 * _smooth(rng, n, fps, 1.0))) / fps
        jaw = scale * rng.uniform(4.0, 10.0) * env * 0.5 * (1 - np.cos(ph))
    elif task in ("slow_translation", "fast_translation"):
        v = (0.07 if task == "slow_translation" else 0.14) * HEAD_MM * 0.85  # face height ≈ 0.85 head
        amp = 20.0 if task == "slow_translation" else 30.0
        tx += scale * _zigzag(rng, t, amp, v)
        ty += scale * _zigzag(rng, t, amp / 3, v / 3)
    elif task in ("small_rotation", "medium_rotation"):
        amp = 20.0 if task == "small_rotation" else 35.0
        yaw += scale * d(_targets(rng, t, amp))
        pitch += scale * d(_targets(rng, t, amp / 3))
    elif task == "walking":
        step = rng.uniform(1.6, 2.0)
        ph = 2 * np.pi * np.cumsum(step * (1 + 0.03 * _smooth(rng, n, fps, 0.2))) / fps + rng.uniform(0, 2 * np.pi)
        ty += scale * rng.uniform(10.0, 25.0) / 2 * np.sin(ph)
        tx += scale * rng.uniform(8.0, 20.0) / 2 * np.sin(ph / 2)
        pitch += scale * d(2.0) * np.sin(ph + 0.5)
        roll += scale * d(1.5) * np.sin(ph / 2)
        zoom += scale * 0.01 * _smooth(rng, n, fps, 0.3)
    elif task == "head_turning":
        f = rng.uniform(0.2, 0.5)
        yaw += scale * d(rng.uniform(30.0, 45.0)) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        pitch += scale * d(5.0) * _smooth(rng, n, fps, 0.5)
    yaw = np.clip(yaw, d(-60), d(60))
    return Pose(tx=tx * px_per_mm, ty=ty * px_per_mm + bcg_px * bcg, yaw=yaw, pitch=np.clip(pitch, d(-40), d(40)),
                roll=roll, scale=zoom, jaw=jaw * px_per_mm)
