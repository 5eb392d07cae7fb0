"""Rendering of the v3 synthetic world: one record's plan → uint8 frames, chunk by chunk.

Per frame: rotate the head's normals by the pose; irradiance per source = level × colour × (ambient +
(1 − ambient)·max(n·l, 0)) × a smooth spatial falloff (attached shadows and shading move with the
head; cast shadows are not modelled); skin radiance = (diffuse albedo − pulse drop) × irradiance +
specular (Blinn–Phong, per source, the light's colour); jaw opening opens the mouth (dark
interior) and stretches the chin and cheeks; the head canvas is projected into the frame with its
depth (orthographic, so the nose shifts against the cheeks when the head turns) by an inverse map
solved in three fixed-point steps, translated (task motion + BCG) and scaled; the background
(walls, lit by the same sources) is composited behind it; mains flicker is applied per row (rolling
shutter); then the camera (:mod:`~protocols.synthetic.camera`) exposes, adds noise, white-balances,
colour-corrects, gamma-encodes and compresses.

Frames are rendered in fixed chunks of 32 frames, each with its own noise stream and its own GOP,
so any block size gives the same frames and memory does not grow with the duration (only per-frame
scalars are kept per record).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from protocols.base import FrameSource, rebuffer
from protocols.synthetic import camera
from protocols.synthetic.light import Source
from protocols.synthetic.motion import Pose
from protocols.synthetic.skin import Head, _blur, build_head

CHUNK = 32
#: Frames per H.264 group of pictures (one key frame, then P-frames): x264's default key-frame
#: interval is 250 frames, which is what a dataset re-encoded with FFmpeg defaults has; a multiple of
#: CHUNK so that noise streams stay per 32-frame chunk. Memory per block: GOP frames (≈ 59 MB at 320×240).
GOP = 256


def unit(plan: Plan) -> int:
    """Frames rendered (and, for H.264, encoded) together: the output is a function of these blocks."""
    return GOP if plan.codec == "h264" else CHUNK


@dataclass(frozen=True)
class Plan:
    """Everything small about one record; the canvas and background are rebuilt from the seeds."""

    width: int
    height: int
    fps: float
    n_frames: int
    seeds: tuple[int, ...]  # SeedSequence entropy of this record (appearance / scene / noise streams)
    head_args: dict  # build_head kwargs except rng
    head_xy: tuple[float, float]  # head centre in the frame at rest
    sources: tuple[Source, ...]
    pose: Pose
    pulse: np.ndarray  # (T,) facial pulse at the capture times
    frame_times: np.ndarray  # (T,) capture times, s
    t_exp: np.ndarray  # (T,)
    gain: np.ndarray  # (T,)
    wb: np.ndarray  # (T, 3)
    cam: dict  # sensitivity, full_well, read_noise, binning, ccm
    codec: str
    crf: float
    jpeg_quality: int


def _rng(plan: Plan, role: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([*plan.seeds, role, *extra]))


@dataclass
class Scene:
    head: Head
    bg_albedo: np.ndarray  # (H, W, 3)
    bg_geom: np.ndarray  # (H, W, K) irradiance factor per source
    head_fall: list[tuple[float, float]]  # per source falloff gradient (x, y) per pixel
    head_slice: tuple[int, int, int, int] = (0, 0, 0, 0)  # canvas rows/cols that rotate (head, neck)
    g0: np.ndarray | None = None  # (hc, wc, K) diffuse shading at rest
    s0: np.ndarray | None = None  # (hc, wc, K) specular shading at rest


def build_scene(plan: Plan) -> Scene:
    """Subject canvas and room background of a record (deterministic, tens of ms)."""
    head = build_head(_rng(plan, 0), **plan.head_args)
    rng = _rng(plan, 1)
    h, w = plan.height, plan.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    base = rng.uniform(0.15, 0.7) * (1 + rng.uniform(-0.12, 0.12, 3))
    lum = 1 + 0.2 * _blur(rng, (h, w), h / 5) + 0.04 * _blur(rng, (h, w), 0.8)
    bg = (base[None, None, :] * lum[..., None]).astype(np.float32)
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        pw, ph = rng.uniform(0.1 * w, 0.5 * w), rng.uniform(0.1 * h, 0.6 * h)
        panel = ((np.abs(xx - x0) < pw / 2) & (np.abs(yy - y0) < ph / 2)).astype(np.float32)
        panel = cv2.GaussianBlur(panel, (0, 0), 0.7)[..., None]
        colour = (rng.uniform(0.05, 0.8) * (1 + rng.uniform(-0.3, 0.3, 3))).astype(np.float32)
        bg = bg * (1 - panel) + colour * panel
    geoms, falls = [], []
    for s in plan.sources:
        fx, fy = float(s.gradient[0]) / w, float(s.gradient[1]) / h
        wall = s.ambient + (1 - s.ambient) * max(float(s.direction[2]), 0.0)
        geoms.append((wall * np.clip(1 + fx * (xx - w / 2) + fy * (yy - h / 2), 0.2, None)).astype(np.float32))
        falls.append((fx, fy))
    scene = Scene(head=head, bg_albedo=np.clip(bg, 0.01, 0.95), bg_geom=np.ascontiguousarray(np.stack(geoms, -1)), head_fall=falls)
    rows, cols = np.nonzero(head.rigid > 0)
    scene.head_slice = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    hc, wc = head.depth.shape
    scene.g0, scene.s0 = _shading(plan, scene, np.eye(3, dtype=np.float32), 0, hc, 0, wc, 0.0, 0.0)
    return scene


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _shading(plan: Plan, scene: Scene, R: np.ndarray, r0: int, r1: int, c0: int, c1: int, tx: float, ty: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """(diffuse, specular) geometry factors (h, w, K) of canvas rows r0:r1, cols c0:c1 under rotation R."""
    hd = scene.head
    n0 = hd.normal[:, r0:r1, c0:c1].reshape(3, -1)
    rig = hd.rigid[r0:r1, c0:c1].reshape(-1)
    n = (R @ n0) * rig + n0 * (1 - rig)
    n /= np.maximum(np.sqrt((n * n).sum(0, keepdims=True)), 1e-6)
    X = np.arange(c0, c1, dtype=np.float32) - np.float32(hd.cx - tx)
    Y = np.arange(r0, r1, dtype=np.float32) - np.float32(hd.cy - ty)
    K = len(plan.sources)
    G = np.empty((n.shape[1], K), np.float32)
    S = np.empty((n.shape[1], K), np.float32)
    view = np.array([0.0, 0.0, 1.0], np.float32)
    for k, s in enumerate(plan.sources):
        d = s.direction.astype(np.float32)
        cos = d @ n
        fx, fy = scene.head_fall[k]
        fall = np.clip(1 + np.float32(fx) * X[None, :] + np.float32(fy) * Y[:, None], 0.2, None).reshape(-1)
        G[:, k] = (s.ambient + (1 - s.ambient) * np.maximum(cos, 0)) * fall
        hv = d + view
        hv /= np.linalg.norm(hv)
        S[:, k] = np.power(np.maximum(hv @ n, 0), np.float32(hd.shininess)) * (cos > 0) * fall
    return G.reshape(r1 - r0, c1 - c0, K), S.reshape(r1 - r0, c1 - c0, K)


def radiance(plan: Plan, scene: Scene, i: int, levels: np.ndarray) -> np.ndarray:
    """Linear scene radiance (H, W, 3) of frame ``i``; ``levels`` (K, 3) = source RGB levels (lux)."""
    hd, p = scene.head, plan.pose
    R = _rotation(float(p.yaw[i]), float(p.pitch[i]), float(p.roll[i])).astype(np.float32)
    hc, wc = hd.depth.shape
    # Shading factors per source: static on the torso, recomputed on the (rotating) head region.
    G, S = scene.g0.copy(), scene.s0.copy()
    r0, r1, c0, c1 = scene.head_slice
    gh, sh = _shading(plan, scene, R, r0, r1, c0, c1, float(p.tx[i]), float(p.ty[i]))
    G[r0:r1, c0:c1], S[r0:r1, c0:c1] = gh, sh
    lev_t = levels.T.astype(np.float32)
    E = cv2.transform(G, lev_t) if G.shape[-1] > 1 else G * lev_t[:, 0]
    Sr = cv2.transform(S, lev_t) if S.shape[-1] > 1 else S * lev_t[:, 0]
    alb = hd.albedo - hd.pulse * np.float32(plan.pulse[i])
    rad = alb * E + hd.spec[..., None] * Sr
    canvas = np.concatenate([rad * hd.alpha[..., None], hd.alpha[..., None]], axis=-1)  # premultiplied
    # Background: walls lit by every source (K-channel geometry × (K, 3) levels).
    geo = scene.bg_geom if len(plan.sources) > 1 else scene.bg_geom[..., None]
    out = scene.bg_albedo * cv2.transform(geo, levels.T.astype(np.float32))
    # Inverse projection inside the canvas footprint: frame pixel → canvas coordinates (head coords).
    h, w = plan.height, plan.width
    sc = float(p.scale[i])
    cx, cy = plan.head_xy[0] + float(p.tx[i]), plan.head_xy[1] + float(p.ty[i])
    u0, u1 = max(0, int(cx - sc * hd.cx) - 2), min(w, int(cx + sc * (wc - hd.cx)) + 3)
    v0, v1 = max(0, int(cy - sc * hd.cy) - 2), min(h, int(cy + sc * (hc - hd.cy)) + 3)
    if u1 <= u0 or v1 <= v0:
        return out
    qx = (np.arange(u0, u1, dtype=np.float32)[None, :] - np.float32(cx)) / np.float32(sc) + np.zeros((v1 - v0, 1), np.float32)
    qy = (np.arange(v0, v1, dtype=np.float32)[:, None] - np.float32(cy)) / np.float32(sc) + np.zeros((1, u1 - u0), np.float32)
    a_inv = np.linalg.inv(R[:2, :2]).astype(np.float32)
    xs, ys = qx, qy
    for _ in range(3):
        mx, my = xs + np.float32(hd.cx), ys + np.float32(hd.cy)
        z = cv2.remap(hd.depth, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        wr = cv2.remap(hd.rigid, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rx, ry = qx - np.float32(R[0, 2]) * z, qy - np.float32(R[1, 2]) * z
        xr = a_inv[0, 0] * rx + a_inv[0, 1] * ry
        yr = a_inv[1, 0] * rx + a_inv[1, 1] * ry
        xs, ys = wr * xr + (1 - wr) * qx, wr * yr + (1 - wr) * qy
    jaw = float(p.jaw[i])
    gap = None
    if jaw > 0.05:
        lip_y, half_w, _ = hd.mouth
        wj = cv2.remap(hd.jaw, xs + np.float32(hd.cx), ys + np.float32(hd.cy), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        ys_j = ys - np.float32(jaw) * wj
        gap = (ys > lip_y) & (ys_j < lip_y + 0.5) & (np.abs(xs) < half_w * np.sqrt(np.clip(1 - ((ys - lip_y) / (jaw + 1)) ** 2, 0, 1)))
        ys = np.where(gap, np.float32(lip_y), ys_j)
    face = cv2.remap(canvas, xs + np.float32(hd.cx), ys + np.float32(hd.cy), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if gap is not None and gap.any():
        face[gap, :3] *= np.float32(0.08)  # the dark mouth interior
    a = face[..., 3:4]
    out[v0:v1, u0:u1] = out[v0:v1, u0:u1] * (1 - a) + face[..., :3]
    return out


def render_chunk(plan: Plan, scene: Scene, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) (start a multiple of :func:`unit`) as uint8 (t, H, W, 3)."""
    h = plan.height
    rows = np.arange(h, dtype=np.float64) / h * 0.8 / plan.fps  # rolling-shutter row delay
    out = np.empty((stop - start, h, plan.width, 3), np.uint8)
    for j, i in enumerate(range(start, stop)):
        levels = np.stack([s.rgb[i] for s in plan.sources])
        rad = radiance(plan, scene, i, levels)
        fl = np.zeros((h, 3))
        tot = levels.sum(0)
        for k, s in enumerate(plan.sources):
            if s.flicker_depth > 0:
                att = abs(np.sinc(s.flicker_hz * float(plan.t_exp[i])))
                fl += np.outer(s.flicker_depth * att * np.sin(2 * np.pi * s.flicker_hz * (plan.frame_times[i] + rows) + s.flicker_phase), levels[k])
        if fl.any():
            rad *= (1 + fl / np.maximum(tot, 1e-9)).astype(np.float32)[:, None, :]
        seed = int(_rng(plan, 2, i // CHUNK).integers(0, 2**31 - 1)) if i % CHUNK == 0 or j == 0 else None
        out[j] = camera.expose(seed, rad, float(plan.t_exp[i]), float(plan.gain[i]), plan.wb[i], **plan.cam)
    return camera.encode_decode(out, plan.codec, plan.fps, crf=plan.crf, jpeg_quality=plan.jpeg_quality)


class WorldFrames(FrameSource):
    """Lazy frames of one v3 record, rendered chunk by chunk on each iteration."""

    def __init__(self, plan: Plan):
        self._plan = plan
        self.n_frames, self.height, self.width = plan.n_frames, plan.height, plan.width

    def _read(self, block: int) -> Iterator[np.ndarray]:
        scene = build_scene(self._plan)
        step = unit(self._plan)
        yield from rebuffer((render_chunk(self._plan, scene, c0, min(c0 + step, self.n_frames))
                             for c0 in range(0, self.n_frames, step)), block)

    def render(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as uint8 (t, H, W, 3), rendering only the chunks needed."""
        start, stop = max(0, int(start)), min(self.n_frames, int(stop))
        scene = build_scene(self._plan)
        step = unit(self._plan)
        c0 = (start // step) * step
        parts = [render_chunk(self._plan, scene, c, min(c + step, self.n_frames)) for c in range(c0, stop, step)]
        return np.concatenate(parts, axis=0)[start - c0 : stop - c0]

    def scene(self) -> Scene:
        """The record's canvas and background (diagnostics and tests)."""
        return build_scene(self._plan)
