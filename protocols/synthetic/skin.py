"""Skin and head of the v3 synthetic world: dichromatic reflectance, melanin, pulse, geometry.

Dichromatic reflection (Shafer, Color Res. Appl. 1985): skin radiance = diffuse (body) reflection +
specular (surface) reflection. Only light that entered the skin and crossed the dermal blood
carries the pulse; the specular part has the light's colour, depends on the surface normal, light
and view directions (it moves with head pose) and carries no pulse — the model behind CHROM
(de Haan & Jeanne, IEEE TBME 2013) and POS (Wang et al., IEEE TBME 2017).

Diffuse reflectance per camera channel c (two-layer Beer–Lambert)::

    R_c = R_epi + T_c² · R_derm,c · (1 − m_c · W(x) · p(t)),   T_c = exp(−κ · μa_mel(λ_c) · f_mel · d)

* μa_mel(λ) = 6.6·10¹¹ · λ[nm]^−3.33 cm⁻¹ (epidermal melanin, Jacques 1998 "Skin optics"),
  λ_c = 600 / 535 / 460 nm, epidermis d = 60 µm, diffuse path factor κ = 2 (in and out).
* melanin volume fraction f_mel from the Fitzpatrick type: 2, 4, 8, 14, 25, 38 % for types I–VI
  (Jacques: 1.3–6.3 % light, 11–16 % moderately pigmented, 18–43 % darkly pigmented skin).
* R_derm = (0.62, 0.40, 0.33): dermis with its baseline blood, which absorbs green and blue;
  R_epi = 0.03: light scattered back by the epidermis before reaching the blood (no pulse).
* the pulse p(t) (unit peak-to-peak) lowers the dermal reflectance by m_c = A · s_c / s_G with
  A = ``pulse_amplitude`` (green; facial pulsatile amplitude is well under 1 %, Verkruysse et al.
  2008) and s the blood-volume-pulse signature Pbv = (0.33, 0.77, 0.53) (de Haan & van Leest 2014),
  perturbed per subject by a log-normal factor of σ ``pbv_jitter`` (the signature varies with skin
  and camera). The relative pulse at the camera is m_c · T_c²R_derm,c / R_c: melanin lowers it,
  more in blue than in red, so darker skin has a lower pulse SNR and a different pulse direction
  (as measured: Fallow et al. 2013; Nowara, McDuff & Veeraraghavan 2020).
* W(x): the pulse strength varies over the face (strong on cheeks and forehead, weak on the nose
  and chin; Kamshilin et al. 2011); mean 1 over the skin.

Specular: Blinn–Phong ρ_s · (n·h)^α with α 12–30 (skin roughness m ≈ 0.3–0.4 → α ≈ 2/m² − 2;
Weyrich et al., SIGGRAPH 2006), ρ_s = ``specular`` (0.02–0.1 typical, higher on the oily T-zone).

Geometry: the head is an ellipsoid (half-width a, half-height b, depth 0.9 a) with a nose ridge
(protruding 0.3 a) on a canvas in head coordinates; a neck and a clothed torso below it. Hair,
eyebrows, eyes and lips are reflectance overlays without pulse (lips: half the pulse).

>>> f = melanin_fraction(1.0), melanin_fraction(6.0)
>>> t = [transmission(x) for x in f]
>>> bool(t[0][1] > t[1][1]), bool(t[1][0] > t[1][2])
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PBV = np.array([0.33, 0.77, 0.53])
R_DERM = np.array([0.62, 0.40, 0.33])
R_EPI = 0.03
_LAMBDA = np.array([600.0, 535.0, 460.0])
_MEL_BY_TYPE = np.array([0.02, 0.04, 0.08, 0.14, 0.25, 0.38])


def melanin_fraction(fitzpatrick: float) -> float:
    """Epidermal melanin volume fraction of a (continuous) Fitzpatrick type 1–6 (Jacques 1998)."""
    return float(np.interp(fitzpatrick, np.arange(1, 7), _MEL_BY_TYPE))


def transmission(f_mel: float) -> np.ndarray:
    """Round-trip epidermal transmission T² per camera channel (R, G, B)."""
    mua_mm = 6.6e11 * _LAMBDA**-3.33 / 10.0
    return np.exp(-2.0 * mua_mm * f_mel * 0.06)


def skin_reflectance(fitzpatrick: float) -> tuple[np.ndarray, np.ndarray]:
    """(diffuse reflectance R_c, pulse-carrying fraction T²R_derm/R_c) for a skin type."""
    t2 = transmission(melanin_fraction(fitzpatrick))
    body = t2 * R_DERM
    refl = R_EPI + body
    return refl, body / refl


def _blur(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    x = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 0 else x


def _soft(d: np.ndarray, width: float = 1.0) -> np.ndarray:
    """Anti-aliased inside mask from a signed distance-like field (inside where d < 1)."""
    return np.clip((1.0 - d) / width + 0.5, 0.0, 1.0).astype(np.float32)


@dataclass
class Head:
    """Canvas maps in head coordinates (canvas pixel (i, j) ↔ X = j − cx, Y = i − cy)."""

    cx: float
    cy: float
    albedo: np.ndarray  # (h, w, 3) diffuse reflectance
    pulse: np.ndarray  # (h, w, 3) reflectance drop per unit pulse
    spec: np.ndarray  # (h, w) specular albedo
    shininess: float
    normal: np.ndarray  # (3, h, w) unit normals at rest
    depth: np.ndarray  # (h, w) z (toward camera) in pixels
    alpha: np.ndarray  # (h, w) coverage
    rigid: np.ndarray  # (h, w) 1 on the head, 0 on the torso
    jaw: np.ndarray  # (h, w) jaw-opening weight (chin moves down)
    mouth: tuple[float, float, float]  # mouth centre Y, half-width, lower-lip Y (canvas px, head coords)
    skin: np.ndarray  # (h, w) skin weight (pulse-carrying area)
    inner_box: tuple[float, float, float, float]  # face box (x0, y0, x1, y1) in head coords (brows to chin)


def build_head(rng: np.random.Generator, a: float, b: float, fitzpatrick: float, amp: float, pbv: np.ndarray, specular: float) -> Head:
    """Canvas of one subject's head, neck and torso (deterministic given ``rng``)."""
    w = int(np.ceil(4.8 * a)) | 1
    h = int(np.ceil(3.9 * b))
    cx, cy = w / 2.0, 1.25 * b
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    X, Y = xx - cx, yy - cy
    xn, yn = X / a, Y / b
    r2 = xn**2 + yn**2
    head = _soft(np.sqrt(r2), 1.0 / max(min(a, b), 1.0))
    c = 0.9 * a
    z = c * np.sqrt(np.clip(1 - r2, 0.02, 1.0))
    nose = 0.3 * a * np.exp(-0.5 * (X / (0.11 * a)) ** 2 - 0.5 * ((Y - 0.05 * b) / (0.22 * b)) ** 2)
    z = z + nose * head
    # neck (cylinder) and torso (wide cylinder), facing the camera
    neck = _soft(np.sqrt((X / (0.45 * a)) ** 2 + ((Y - 1.05 * b) / (0.45 * b)) ** 2), 0.05)
    torso = _soft(np.sqrt((X / (2.3 * a)) ** 2 + ((Y - 2.15 * b) / (0.95 * b)) ** 2), 0.03)
    body = np.maximum(neck, torso) * (1 - head)
    z_body = 0.45 * a * np.sqrt(np.clip(1 - (X / (2.3 * a)) ** 2, 0.05, 1)) * torso + 0.4 * a * neck * (1 - torso)
    z = z * head + z_body * (1 - head)
    gy, gx = np.gradient(cv2.GaussianBlur(z, (0, 0), 0.7))
    nrm = np.stack([-gx, -gy, np.ones_like(z)])
    nrm /= np.linalg.norm(nrm, axis=0, keepdims=True)

    refl, frac = skin_reflectance(fitzpatrick)
    tex = 1 + 0.03 * _blur(rng, (h, w), 0.8) + 0.04 * _blur(rng, (h, w), a / 4)
    redness = 1 + 0.05 * _blur(rng, (h, w), a / 3)  # blotchy haemoglobin (cheeks)
    skin_rgb = refl[None, None, :] * tex[..., None]
    skin_rgb = skin_rgb * np.stack([redness, 1 / redness, 1 / redness], -1) ** 0.5
    alb = skin_rgb.astype(np.float32)
    skin = (head + neck * (1 - head)) * (1 - torso)

    hairline = cy - b * rng.uniform(0.45, 0.62)
    cap = _soft(np.sqrt((X / (1.07 * a)) ** 2 + ((Y + 0.08 * b) / (1.03 * b)) ** 2), 0.05)
    hair = np.clip(cap * np.clip((hairline - yy) / 2 + 0.5, 0, 1) + np.clip(cap - head, 0, 1) * (Y < 0), 0, 1)
    hair_rgb = (rng.uniform(0.02, 0.3) * np.array([1.0, 0.8, 0.65]) * rng.uniform(0.85, 1.0, 3)).astype(np.float32)
    hair_tex = (1 + 0.2 * _blur(rng, (h, w), 0.7))[..., None]
    alb = alb * (1 - hair[..., None]) + hair_rgb * hair_tex * hair[..., None]
    cloth = (rng.uniform(0.05, 0.6) * (1 + rng.uniform(-0.4, 0.4, 3))).astype(np.float32)
    alb = alb * (1 - torso[..., None]) + cloth * (1 + 0.06 * _blur(rng, (h, w), 1.2))[..., None] * torso[..., None]

    lip_y = 0.5 * b
    lips = _soft(np.sqrt((X / (0.3 * a)) ** 2 + ((Y - lip_y) / (0.07 * b)) ** 2), 0.15)
    alb = alb * (1 - lips[..., None]) + (refl * np.array([1.0, 0.7, 0.75]))[None, None, :].astype(np.float32) * lips[..., None]
    nonskin = hair.copy()
    for side in (-1.0, 1.0):
        ex, ey = side * 0.38 * a, -0.12 * b
        brow = _soft(np.sqrt(((X - ex) / (0.25 * a)) ** 2 + ((Y + 0.3 * b) / (0.045 * b)) ** 2), 0.2)
        eye = _soft(np.sqrt(((X - ex) / (0.2 * a)) ** 2 + ((Y - ey) / (0.08 * b)) ** 2), 0.2)
        iris = _soft(np.sqrt(((X - ex) ** 2 + (Y - ey) ** 2)) / (0.075 * b), 0.2) * eye
        alb = alb * (1 - brow[..., None]) + hair_rgb * brow[..., None]
        alb = alb * (1 - eye[..., None]) + np.array([0.7, 0.68, 0.66], np.float32) * eye[..., None]
        alb = alb * (1 - iris[..., None]) + np.array([0.08, 0.05, 0.04], np.float32) * iris[..., None]
        nonskin = np.maximum(nonskin, np.maximum(brow, eye))
    skin = skin * (1 - nonskin) * (1 - 0.5 * lips)

    # Pulse strength over the face: cheeks and forehead strong, nose/chin weaker, random detail.
    cheeks = sum(np.exp(-0.5 * (((X - s * 0.45 * a) / (0.25 * a)) ** 2 + ((Y - 0.2 * b) / (0.2 * b)) ** 2)) for s in (-1, 1))
    forehead = np.exp(-0.5 * ((X / (0.5 * a)) ** 2 + ((Y + 0.45 * b) / (0.15 * b)) ** 2))
    wp = (0.5 + 0.8 * cheeks + 0.6 * forehead) * np.clip(1 + 0.25 * _blur(rng, (h, w), a / 5), 0.3, None) * skin
    wp *= float(skin.sum()) / max(float(wp.sum()), 1e-6)
    m = amp * pbv / pbv[1]
    pulse = (alb * (frac * m)[None, None, :] * wp[..., None]).astype(np.float32)

    tzone = np.exp(-0.5 * ((X / (0.2 * a)) ** 2 + ((Y + 0.1 * b) / (0.5 * b)) ** 2))
    spec = (specular * (0.6 + 0.8 * tzone) * np.clip(1 + 0.3 * _blur(rng, (h, w), 1.0), 0, None) * head * (1 - hair)).astype(np.float32)

    jawmask = np.clip((Y - lip_y) / (0.2 * b), 0, 1) * np.exp(-0.5 * (X / (0.6 * a)) ** 2) * np.clip(1.3 - Y / b, 0, 1)
    alpha = np.maximum(np.maximum(head, hair), body)
    rigid = np.clip(head + hair + 0.5 * neck * (1 - head), 0, 1)
    return Head(cx=cx, cy=cy, albedo=alb.astype(np.float32), pulse=pulse, spec=spec, shininess=float(rng.uniform(12, 30)),
                normal=nrm.astype(np.float32), depth=z.astype(np.float32), alpha=alpha.astype(np.float32),
                rigid=rigid.astype(np.float32), jaw=jawmask.astype(np.float32), mouth=(lip_y, 0.28 * a, lip_y + 0.04 * b),
                skin=skin.astype(np.float32), inner_box=(-0.85 * a, -0.42 * b, 0.85 * a, 0.95 * b))
