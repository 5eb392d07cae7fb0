"""Knobs and tiers of the v3 synthetic world.

Every knob is a physical quantity with an allowed range (:data:`KNOBS`; the physics and sources are in
the modules named there). A *tier* gives each knob a value or a (lo, hi) range from which each
record draws uniformly, or a list of choices (tasks, light setups, codecs). Tiers mirror the
recording *conditions* of public datasets — not their data:

``ubfc_like`` — UBFC-rPPG (Bobbia et al., Pattern Recogn. Lett. 2019): 42 subjects seated ≈ 1 m from a
    Logitech C920 webcam, 640×480, 30 fps, **uncompressed** 8-bit; indoor natural light, the subject
    plays a time-pressured game on a screen (HR rises during the record: ``hr_drift_bpm`` 0–25);
    mostly light skin (types I–IV). Webcam AE/AWB on.
``pure_like`` — PURE (Stricker et al., RO-MAN 2014): 10 subjects, six 1-min tasks each (steady, talking,
    slow/fast translation, small/medium rotation), eco274CVGE camera 640×480, 30 fps, **lossless**
    PNG; daylight through a large window frontal to the face, varying cloudiness; European subjects
    (types I–III); HR at rest.
``mmpd_like`` — MMPD (Tang et al., EMBC 2023): 33 subjects, Samsung Galaxy S22 Ultra phone, released
    at 320×240, 30 fps, **H.264** MP4; Fitzpatrick types III–VI; four lights (LED low, LED high,
    incandescent, natural); stationary / head rotation / talking / walking; some records after
    exercise (HR up to 150, falling).
``train_mix`` — domain randomisation (Tobin et al. 2017): every knob drawn from a wide range covering
    all tiers and beyond; every task, light setup and codec.

Values that are not documented for a dataset (camera noise, AE/AWB time constants, BCG, specular
strength) use the typical ranges given in the modules' docstrings for the device class (webcam,
industrial camera, phone).

>>> resolve_tier("pure_like", {"skin_type": (1, 2)})["skin_type"]
(1.0, 2.0)
>>> resolve_tier("nope", {})
Traceback (most recent call last):
...
ValueError: synthetic: unknown tier 'nope'; valid: ubfc_like, pure_like, mmpd_like, train_mix
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocols.synthetic.light import SETUPS
from protocols.synthetic.motion import TASKS

CODECS = ("none", "h264", "mjpeg")


@dataclass(frozen=True)
class Knob:
    kind: str  # range | value | choices
    lo: float = 0.0
    hi: float = 0.0
    choices: tuple[str, ...] = ()
    doc: str = ""


KNOBS: dict[str, Knob] = {
    "face_fraction": Knob("range", 0.15, 0.8, doc="head height / frame height (skin.py)"),
    "sensor_height": Knob("value", 120, 4320, doc="native sensor rows; rendered pixels bin (sensor_height/height)² of them (camera.py)"),
    "tasks": Knob("choices", choices=TASKS, doc="recording tasks, cycled over a subject's records (motion.py)"),
    "motion_scale": Knob("range", 0.0, 2.0, doc="× every task amplitude (motion.py)"),
    "bcg_um": Knob("range", 0.0, 1000.0, doc="BCG head displacement, peak-to-peak µm (motion.py)"),
    "lights": Knob("choices", choices=tuple(SETUPS), doc="light setups (light.py)"),
    "illuminance_lux": Knob("range", 5.0, 5000.0, doc="illuminance at the face, lux (light.py)"),
    "light_steps_per_min": Knob("range", 0.0, 20.0, doc="rate of light steps (light.py)"),
    "flicker_depth": Knob("range", 0.0, 1.0, doc="mains flicker modulation depth of lamps (light.py)"),
    "skin_type": Knob("range", 1.0, 6.0, doc="Fitzpatrick type, continuous (skin.py)"),
    "pulse_amplitude": Knob("range", 0.0005, 0.05, doc="dermal pulsatile reflectance change, green, peak-to-peak (skin.py)"),
    "pbv_jitter": Knob("value", 0.0, 0.5, doc="σ of the per-subject log-perturbation of Pbv (skin.py)"),
    "specular": Knob("range", 0.0, 0.5, doc="specular albedo ρ_s (skin.py)"),
    "hr_bpm": Knob("range", 35.0, 200.0, doc="mean heart rate (physio.py)"),
    "hr_drift_bpm": Knob("range", -60.0, 60.0, doc="HR change over the record (physio.py)"),
    "rsa_bpm": Knob("range", 0.0, 15.0, doc="respiratory sinus arrhythmia amplitude (physio.py)"),
    "respiration": Knob("value", 0.0, 1.0, doc="respiratory amplitude/baseline modulation (physio.py)"),
    "label_lag_s": Knob("range", 0.0, 0.5, doc="finger-label delay after the facial pulse (physio.py)"),
    "sensitivity": Knob("range", 50.0, 50000.0, doc="electrons per lux·s at reflectance 1, per native pixel (camera.py)"),
    "full_well_e": Knob("range", 1000.0, 100000.0, doc="full-well capacity, e⁻ (camera.py)"),
    "read_noise_e": Knob("range", 0.5, 50.0, doc="read noise, e⁻ rms (camera.py)"),
    "auto_exposure_s": Knob("range", 0.0, 10.0, doc="AE time constant, 0 = fixed (camera.py)"),
    "awb_s": Knob("range", 0.0, 20.0, doc="AWB time constant, 0 = fixed daylight WB (camera.py)"),
    "ccm": Knob("range", 0.0, 1.0, doc="colour-correction matrix strength (camera.py)"),
    "jitter_ms": Knob("range", 0.0, 20.0, doc="frame-time jitter σ, ms (camera.py)"),
    "codecs": Knob("choices", choices=CODECS, doc="compression (camera.py)"),
    "crf": Knob("range", 0.0, 51.0, doc="H.264 constant rate factor (camera.py)"),
    "jpeg_quality": Knob("range", 1.0, 100.0, doc="MJPEG quality (camera.py)"),
}

_COMMON: dict[str, Any] = {
    "bcg_um": (50.0, 200.0), "pbv_jitter": 0.08, "specular": (0.02, 0.1), "rsa_bpm": (1.0, 4.0), "respiration": 0.3,
    "label_lag_s": (0.1, 0.25), "pulse_amplitude": (0.004, 0.012), "motion_scale": (0.8, 1.2), "crf": (23.0, 23.0),
    "jpeg_quality": (90.0, 90.0), "ccm": (0.8, 1.0),
}

TIERS: dict[str, dict[str, Any]] = {
    "ubfc_like": {**_COMMON,
        "face_fraction": (0.35, 0.5), "sensor_height": 480, "tasks": ("game",), "lights": ("daylight_screen",),
        "illuminance_lux": (150.0, 500.0), "light_steps_per_min": (0.0, 1.0), "flicker_depth": (0.1, 0.3),
        "skin_type": (1.0, 4.0), "hr_bpm": (60.0, 110.0), "hr_drift_bpm": (0.0, 25.0),
        "sensitivity": (1500.0, 3000.0), "full_well_e": (6000.0, 10000.0), "read_noise_e": (2.0, 4.0),
        "auto_exposure_s": (0.3, 1.0), "awb_s": (1.0, 3.0), "jitter_ms": (0.0, 1.0), "codecs": ("none",)},
    "pure_like": {**_COMMON,
        "face_fraction": (0.4, 0.55), "sensor_height": 480,
        "tasks": ("still", "talking", "slow_translation", "fast_translation", "small_rotation", "medium_rotation"),
        "lights": ("daylight_window",), "illuminance_lux": (300.0, 1200.0), "light_steps_per_min": (0.0, 2.0),
        "flicker_depth": (0.0, 0.0), "skin_type": (1.0, 3.0), "hr_bpm": (55.0, 100.0), "hr_drift_bpm": (-5.0, 5.0),
        "sensitivity": (2000.0, 4000.0), "full_well_e": (8000.0, 15000.0), "read_noise_e": (2.0, 5.0),
        "auto_exposure_s": (0.5, 1.5), "awb_s": (0.0, 0.0), "jitter_ms": (0.0, 1.0), "codecs": ("none",)},
    "mmpd_like": {**_COMMON,
        "face_fraction": (0.35, 0.55), "sensor_height": 1080,
        "tasks": ("still", "head_turning", "talking", "walking"),
        "lights": ("led_low", "led_high", "incandescent", "daylight_window"), "illuminance_lux": (60.0, 600.0),
        "light_steps_per_min": (0.0, 2.0), "flicker_depth": (0.1, 0.5), "skin_type": (3.0, 6.0),
        "hr_bpm": (65.0, 150.0), "hr_drift_bpm": (-30.0, 0.0), "sensitivity": (800.0, 1500.0),
        "full_well_e": (4000.0, 6000.0), "read_noise_e": (1.5, 3.0), "auto_exposure_s": (0.2, 0.6), "awb_s": (0.5, 2.0),
        "jitter_ms": (0.5, 2.0), "codecs": ("h264",), "crf": (12.0, 18.0)},
    "train_mix": {
        "face_fraction": (0.25, 0.6), "sensor_height": 720, "tasks": TASKS, "motion_scale": (0.3, 1.5),
        "bcg_um": (0.0, 300.0), "lights": tuple(SETUPS), "illuminance_lux": (30.0, 2000.0),
        "light_steps_per_min": (0.0, 4.0), "flicker_depth": (0.0, 0.6), "skin_type": (1.0, 6.0),
        "pulse_amplitude": (0.002, 0.015), "pbv_jitter": 0.12, "specular": (0.0, 0.15), "hr_bpm": (45.0, 150.0),
        "hr_drift_bpm": (-30.0, 30.0), "rsa_bpm": (0.0, 6.0), "respiration": 0.5, "label_lag_s": (0.05, 0.3),
        "sensitivity": (500.0, 4000.0), "full_well_e": (3000.0, 15000.0), "read_noise_e": (1.5, 8.0),
        "auto_exposure_s": (0.0, 2.0), "awb_s": (0.0, 3.0), "ccm": (0.0, 1.0), "jitter_ms": (0.0, 3.0),
        "codecs": CODECS, "crf": (12.0, 18.0), "jpeg_quality": (90.0, 98.0)},
}


def _check(name: str, value: Any) -> Any:
    spec = KNOBS[name]
    if spec.kind == "choices":
        vals = (value,) if isinstance(value, str) else tuple(value)
        bad = [v for v in vals if v not in spec.choices]
        if not vals or bad:
            raise ValueError(f"synthetic: knob {name} has invalid choice(s) {bad or vals!r}; valid: {', '.join(spec.choices)}")
        return tuple(str(v) for v in vals)
    if spec.kind == "range":
        try:
            lo, hi = (float(v) for v in ((value, value) if isinstance(value, (int, float)) else value))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"synthetic: knob {name} must be a number or a (lo, hi) pair, got {value!r}") from exc
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or lo < spec.lo or hi > spec.hi:
            raise ValueError(f"synthetic: knob {name}={value!r} out of range; allowed: {spec.lo} <= lo <= hi <= {spec.hi}")
        return (lo, hi)
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"synthetic: knob {name} must be a number, got {value!r}") from exc
    if not (math.isfinite(v) and spec.lo <= v <= spec.hi):
        raise ValueError(f"synthetic: knob {name}={value!r} out of range; allowed: [{spec.lo}, {spec.hi}]")
    return v


def resolve_tier(tier: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The tier's knob values with ``overrides`` applied, every value checked against :data:`KNOBS`."""
    if tier not in TIERS:
        raise ValueError(f"synthetic: unknown tier {tier!r}; valid: {', '.join(TIERS)}")
    unknown = sorted(set(overrides) - set(KNOBS))
    if unknown:
        raise ValueError(f"synthetic: unknown knob(s) {', '.join(unknown)}; valid: {', '.join(KNOBS)}")
    values = {**TIERS[tier], **{k: v for k, v in overrides.items() if v is not None}}
    missing = sorted(set(KNOBS) - set(values))
    if missing:  # pragma: no cover - guards the TIERS table itself
        raise ValueError(f"synthetic: tier {tier!r} does not set {', '.join(missing)}")
    return {k: _check(k, values[k]) for k in KNOBS}
