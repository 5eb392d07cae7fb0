"""Legacy (v2) synthetic rendering: static scene textures, per-chunk rendering, lazy frames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from protocols.base import FrameSource, rebuffer
from protocols.synthetic.legacy_world import (
    _APPEARANCE,
    _CHUNK,
    _NOISE,
    _SCENE,
    PULSE_SIGNATURE,
    Knobs,
    _blur_noise,
    _ellipse,
    _rng,
    _skin_colour,
)

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
        scene = _build_scene(self._plan)
        yield from rebuffer((_render_chunk(self._plan, scene, c0, min(c0 + _CHUNK, self.n_frames))
                             for c0 in range(0, self.n_frames, _CHUNK)), block)

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


