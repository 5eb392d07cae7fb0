"""Light in the v3 synthetic world: source spectra → camera RGB, directions, and their time courses.

Every source has a spectrum (→ its colour as the camera sees it), a direction (→ shading, attached
shadows and the specular highlight on the face, which therefore move with head pose), a diffuse
(ambient) fraction, a share of the illuminance at the face, and a time course: slow drift, steps
(a lamp switched, a cloud edge), mains flicker and screen content. Different sources have different
colours, so a step of one source is a *colour* step and head rotation changes the colour mix on the
skin — disturbances that chrominance methods cannot fully cancel, as in real rooms.

Spectra (relative spectral power, 400–700 nm)
    * daylight — Planck radiator at 5500–6500 K (CIE D-illuminants are close to it in the visible).
    * incandescent — Planck radiator at 2700–3000 K (tungsten filament).
    * led — phosphor-converted white LED: blue pump at 450 nm (FWHM ≈ 20 nm) plus a broad phosphor
      band at 560 nm (FWHM ≈ 120 nm); the pump/phosphor ratio sets 3000–6500 K (Schubert, *Light-
      Emitting Diodes*, 2006).
    * fluorescent — tri-phosphor lamp: emission lines at 436, 546, 611 nm plus a weak continuum.
    * screen — LCD/OLED primaries at 455, 530, 625 nm weighted by the displayed content.
    Camera channel sensitivities are Gaussians (R 600 ± 45, G 535 ± 40, B 460 ± 30 nm), the
    typical shape of CMOS colour filters (Jiang et al., WACV 2013, "What is the space of spectral
    sensitivity functions for digital color cameras?"). A source's camera RGB is the integral of
    spectrum × sensitivity; skin and walls are treated as per-channel reflectances (a von Kries
    simplification of the spectral product).

Time courses
    * daylight: cloud-driven drift, σ 3–10 % below 0.05 Hz (outdoor irradiance variability;
      Lave et al. 2013), plus steps at ``light_steps_per_min`` (cloud edges, rise 1–5 s).
    * mains-driven sources flicker at twice the mains frequency (50 or 60 Hz → 100/120 Hz) with
      modulation depth ``flicker_depth`` × the source's factor: fluorescent with magnetic ballast
      and LEDs with simple drivers 0.2–1 (IEEE Std 1789-2015, Lehman & Wilkins 2014), incandescent
      × 0.15 (thermal inertia, percent flicker ≈ 5–15 %). The camera integrates over its exposure
      (attenuation |sinc(f·t_exp)|, see :mod:`~protocols.synthetic.camera`) and a rolling shutter
      samples each row at a different time, so flicker aliases to low frequencies and bands.
    * room lamps: occasional steps (switched on/off, dimmed), which change the colour mix.
    * screen: content cuts every 3–15 s (level ×0.7–1.3, new colour) and within-scene changes
      (σ 5 %, below 0.5 Hz), as a monitor or TV lighting the face. These values are a guess (no
      source measured a screen's light on a face); a first guess of cuts every 2–8 s and σ 15 % up
      to 2 Hz made the screen 20× the pulse in band and failed every method on ``ubfc_like``; it was
      lowered after that pilot (recorded in docs/synthetic_world.md).

>>> rgb = camera_rgb(spectrum("incandescent", 2800.0))
>>> bool(rgb[0] > rgb[1] > rgb[2])
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

_LAM = np.arange(400.0, 701.0, 5.0)
_SENS = np.stack([np.exp(-0.5 * ((_LAM - mu) / sd) ** 2) for mu, sd in ((600, 45), (535, 40), (460, 30))])


def _planck(temp_k: float) -> np.ndarray:
    lam = _LAM * 1e-9
    return 1.0 / (lam**5 * (np.exp(1.4388e-2 / (lam * temp_k)) - 1.0))


def _band(mu: float, fwhm: float) -> np.ndarray:
    return np.exp(-0.5 * ((_LAM - mu) / (fwhm / 2.355)) ** 2)


def spectrum(kind: str, cct: float = 5000.0, content: np.ndarray | None = None) -> np.ndarray:
    """Relative spectral power of a source kind on 400–700 nm (5-nm grid)."""
    if kind in ("daylight", "incandescent"):
        s = _planck(cct)
    elif kind == "led":
        pump = np.clip((cct - 2500.0) / 4000.0, 0.05, 1.0)  # more blue pump → higher CCT
        s = 0.6 * pump * _band(450, 20) + _band(560, 120)
    elif kind == "fluorescent":
        s = _band(436, 8) * 0.5 + _band(546, 8) + _band(611, 10) * 0.9 + 0.08
    elif kind == "screen":
        w = np.ones(3) if content is None else np.asarray(content, float)
        s = w[2] * _band(455, 25) + w[1] * _band(530, 35) + w[0] * _band(625, 30)
    else:
        raise ValueError(f"synthetic: unknown light spectrum {kind!r}; valid: daylight, incandescent, led, fluorescent, screen")
    return s / s.max()


def camera_rgb(spec: np.ndarray) -> np.ndarray:
    """Camera RGB of a spectrum, normalised to unit luma (0.3 R + 0.59 G + 0.11 B)."""
    rgb = _SENS @ spec
    return rgb / float(rgb @ np.array([0.3, 0.59, 0.11]))


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # spectrum kind
    cct: tuple[float, float]
    share: tuple[float, float]  # share of the illuminance at the face (normalised over the setup)
    azimuth_deg: tuple[float, float]  # + = light from the subject's left as seen by the camera (image right)
    elevation_deg: tuple[float, float]
    ambient: tuple[float, float]  # diffuse (sky / bounce) fraction of this source
    time_course: str  # daylight | lamp | screen
    flicker: float  # factor on flicker_depth (0: none)


#: Light setups: sources with ranges from typical rooms (directions are where the light comes from).
SETUPS: dict[str, tuple[SourceSpec, ...]] = {
    # A large window beside/in front of the subject plus room bounce (PURE: daylight through a large
    # window frontal to the face; UBFC-rPPG: indoor natural light).
    "daylight_window": (
        SourceSpec("daylight", (5500, 6500), (0.7, 0.85), (-50, 50), (5, 30), (0.3, 0.5), "daylight", 0.0),
        SourceSpec("daylight", (5000, 6000), (0.15, 0.3), (-180, 180), (30, 70), (0.7, 0.9), "daylight", 0.0),
    ),
    # Natural room light plus the monitor the subject looks at (UBFC-rPPG: a game on a screen).
    "daylight_screen": (
        SourceSpec("daylight", (5000, 6500), (0.65, 0.85), (-70, 70), (10, 50), (0.4, 0.7), "daylight", 0.0),
        SourceSpec("screen", (6500, 6500), (0.08, 0.2), (-10, 10), (-10, 5), (0.2, 0.4), "screen", 0.0),
        SourceSpec("led", (2700, 4000), (0.05, 0.2), (-180, 180), (40, 80), (0.6, 0.9), "lamp", 1.0),
    ),
    # Office: LED panels overhead, some window light.
    "led_ceiling": (
        SourceSpec("led", (3500, 5000), (0.6, 0.85), (-30, 30), (45, 75), (0.4, 0.6), "lamp", 1.0),
        SourceSpec("daylight", (5500, 6500), (0.15, 0.4), (-90, 90), (0, 30), (0.5, 0.8), "daylight", 0.0),
    ),
    # MMPD-like LED lamp in front of the subject, low and high level (the level is in the tier's lux).
    "led_low": (
        SourceSpec("led", (4000, 6000), (0.8, 0.95), (-30, 30), (0, 30), (0.2, 0.4), "lamp", 1.0),
        SourceSpec("led", (3000, 4000), (0.05, 0.2), (-180, 180), (40, 80), (0.7, 0.9), "lamp", 1.0),
    ),
    "led_high": (
        SourceSpec("led", (4000, 6000), (0.85, 0.95), (-30, 30), (0, 30), (0.2, 0.4), "lamp", 1.0),
        SourceSpec("led", (3000, 4000), (0.05, 0.15), (-180, 180), (40, 80), (0.7, 0.9), "lamp", 1.0),
    ),
    "incandescent": (
        SourceSpec("incandescent", (2600, 3000), (0.7, 0.9), (-70, 70), (0, 40), (0.2, 0.4), "lamp", 0.15),
        SourceSpec("incandescent", (2700, 3000), (0.1, 0.3), (-180, 180), (40, 80), (0.7, 0.9), "lamp", 0.15),
    ),
    "fluorescent": (
        SourceSpec("fluorescent", (4000, 4000), (0.7, 0.9), (-40, 40), (45, 80), (0.4, 0.6), "lamp", 1.0),
        SourceSpec("daylight", (5500, 6500), (0.1, 0.3), (-90, 90), (0, 30), (0.5, 0.8), "daylight", 0.0),
    ),
    # A dark room lit mostly by a screen (watching a video).
    "screen_dark": (
        SourceSpec("screen", (6500, 6500), (0.6, 0.8), (-15, 15), (-10, 10), (0.2, 0.4), "screen", 0.0),
        SourceSpec("incandescent", (2700, 3000), (0.2, 0.4), (-180, 180), (30, 80), (0.7, 0.9), "lamp", 0.15),
    ),
}


@dataclass(frozen=True)
class Source:
    """One drawn source of a record."""

    direction: np.ndarray  # (3,) unit vector towards the light (x right, y down, z to the camera)
    ambient: float
    share: float
    rgb: np.ndarray  # (T, 3) camera RGB × level over time (screen colour changes with content)
    flicker_depth: float
    flicker_hz: float
    flicker_phase: float
    gradient: np.ndarray  # (2,) relative irradiance change per frame width / height (falloff)


def _smooth(rng: np.random.Generator, n: int, fs: float, cutoff: float) -> np.ndarray:
    x = rng.standard_normal(n + 400)
    sos = scipy.signal.butter(2, min(cutoff / (fs / 2), 0.99), output="sos")
    y = scipy.signal.sosfiltfilt(sos, x)[200 : 200 + n]
    sd = float(y.std())
    return (y - y.mean()) / sd if sd > 0 else np.zeros(n)


def _steps(rng: np.random.Generator, t: np.ndarray, per_min: float, size: tuple[float, float], rise: tuple[float, float]) -> np.ndarray:
    out = np.zeros_like(t)
    for _ in range(int(rng.poisson(per_min * (t[-1] + 1e-9) / 60.0))):
        at = rng.uniform(0, t[-1])
        mag = rng.uniform(*size) * rng.choice([-1.0, 1.0])
        out += mag * 0.5 * (1 + np.tanh((t - at) / (rng.uniform(*rise) / 4)))
    return out


def draw_sources(rng: np.random.Generator, setup: str, n: int, fps: float, *, steps_per_min: float, flicker_depth: float) -> list[Source]:
    """Draw the sources of ``setup`` with their per-frame RGB levels (mean share, not yet × lux)."""
    if setup not in SETUPS:
        raise ValueError(f"synthetic: unknown light setup {setup!r}; valid: {', '.join(SETUPS)}")
    specs = SETUPS[setup]
    shares = np.array([rng.uniform(*s.share) for s in specs])
    shares /= shares.sum()
    mains = 50.0 if rng.uniform() < 0.5 else 60.0
    t = np.arange(n) / fps
    out = []
    for spec, share in zip(specs, shares):
        az, el = np.deg2rad(rng.uniform(*spec.azimuth_deg)), np.deg2rad(rng.uniform(*spec.elevation_deg))
        d = np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)])
        cct = rng.uniform(*spec.cct)
        if spec.time_course == "daylight":
            level = 1 + rng.uniform(0.03, 0.1) * _smooth(rng, n, fps, 0.05)
            level += _steps(rng, t, steps_per_min, (0.1, 0.4), (1.0, 5.0))
            rgb = np.outer(np.clip(level, 0.2, 3.0), camera_rgb(spectrum(spec.kind, cct)))
        elif spec.time_course == "lamp":
            level = 1 + 0.01 * _smooth(rng, n, fps, 0.1) + _steps(rng, t, steps_per_min / 2, (0.2, 0.8), (0.05, 0.3))
            rgb = np.outer(np.clip(level, 0.05, 3.0), camera_rgb(spectrum(spec.kind, cct)))
        else:  # screen: content cuts + within-scene changes, colour per scene
            rgb = np.empty((n, 3))
            cut = 0.0
            while cut < t[-1] + 1e-9:
                nxt = cut + rng.uniform(3.0, 15.0)
                sel = (t >= cut) & (t < nxt)
                content = rng.uniform(0.6, 1.0, 3)
                rgb[sel] = camera_rgb(spectrum("screen", content=content)) * rng.uniform(0.7, 1.3)
                cut = nxt
            rgb *= np.clip(1 + 0.05 * _smooth(rng, n, fps, 0.5), 0.3, 2.0)[:, None]
        grad = rng.uniform(-0.3, 0.3, 2) * (1 - rng.uniform(*spec.ambient))
        out.append(Source(direction=d, ambient=float(rng.uniform(*spec.ambient)), share=float(share), rgb=rgb * share,
                          flicker_depth=float(flicker_depth * spec.flicker), flicker_hz=2 * mains,
                          flicker_phase=float(rng.uniform(0, 2 * np.pi)), gradient=grad))
    return out
