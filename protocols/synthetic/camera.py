"""Camera of the v3 synthetic world: exposure, sensor noise, white balance, colour, gamma, codec.

Scene radiance is in "lux × reflectance" units (the illuminance at the face times a reflectance).
A native sensor pixel collects ``sensitivity`` electrons per lux·second at reflectance 1; a rendered
pixel stands for ``(sensor_height / height)²`` native pixels (the camera or the dataset downscaled
the video), which sum electrons, full well and read-noise variance.

* Exposure (AE, ``auto_exposure_s``): the camera keeps the frame's mean linear luma at 18 % of full
  scale (the mid-grey target of exposure metering, ISO 2720) by the exposure time t ≤ 0.9/fps
  first, then analogue gain (≤ 16×: dim scenes get noisier); it follows the scene with a
  first-order lag of time constant ``auto_exposure_s`` (0 = exposure fixed from the first second).
  The metering sees the frame mean computed from the lights (not from the noisy frame), which keeps
  rendering chunk-independent.
* Sensor: shot noise (Poisson ≈ Gaussian √e), read noise ``read_noise_e`` e⁻ rms, full-well clip
  (EMVA 1288 model; webcam/phone pixels: full well 4–15 ke⁻, read noise 1.5–5 e⁻), 10-bit ADC.
* Flicker seen by the sensor: a source flickering at f is attenuated by |sinc(f·t_exp)| (the
  exposure integrates it) and, with a rolling shutter reading rows over 0.8/fps, each row samples
  a different phase.
* White balance (AWB, ``awb_s``): grey-world gains on the frame mean, following with time constant
  ``awb_s``; 0 = fixed white balance for 5500 K daylight.
* Colour correction: a typical sensor-to-sRGB matrix (saturation boost with negative off-diagonal
  terms), blended with identity by ``ccm`` (0–1). It mixes channels, so it changes the pulse's
  colour direction and amplifies noise, as in real cameras.
* Gamma: sRGB OETF (IEC 61966-2-1), then 8-bit.
* Frame-time jitter: frame i is captured at i/fps·(1 + clock error, ±100 ppm) + N(0, ``jitter_ms``);
  the video claims exact i/fps. The sensor's own clock times the capture, so the jitter of the
  capture instants is small (≤ 1 ms for webcams; 0.5–2 ms for phones with a variable frame rate);
  the several-ms jitter of OS timestamps does not move the capture. (A first version used 1–6 ms,
  which turned 100/120-Hz flicker into broadband noise; corrected after the pilot.)
* Compression (``codec``): ``none``; ``h264`` — libx264 through PyAV at ``crf`` with 4:2:0 chroma,
  preset "veryfast", one GOP per 256 frames (x264's default key-frame interval is 250; a first
  version with 32-frame GOPs put a key-frame artifact at fps/32 ≈ 0.94 Hz, inside the pulse band),
  single-threaded so the bitstream is deterministic; ``mjpeg`` — JPEG per frame at
  ``jpeg_quality`` (OpenCV, 4:2:0). Frames are decoded again before preprocessing, as a real
  pipeline would (compression strongly reduces pulse SNR: McDuff et al., CVPR-W 2017).
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

#: Typical camera colour-correction matrix (sensor RGB → sRGB), rows sum to 1.
CCM = np.array([[1.60, -0.45, -0.15], [-0.25, 1.55, -0.30], [0.00, -0.50, 1.50]])
LUMA = np.array([0.3, 0.59, 0.11])
TARGET = 0.18
MAX_GAIN = 16.0

_SRGB_LUT = None


def srgb_lut() -> np.ndarray:
    """uint8 sRGB encoding of 4096 linear levels (a 12-bit lookup table)."""
    global _SRGB_LUT
    if _SRGB_LUT is None:
        x = np.linspace(0, 1, 4096)
        y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
        _SRGB_LUT = np.clip(np.rint(255 * y), 0, 255).astype(np.uint8)
    return _SRGB_LUT


def _lag(x: np.ndarray, fps: float, tau_s: float) -> np.ndarray:
    if tau_s <= 0:
        return np.full_like(x, x[: max(1, int(fps))].mean())
    k = 1 - np.exp(-1 / (tau_s * fps))
    out = np.empty_like(x)
    acc = x[0]
    for i, v in enumerate(x):
        acc += k * (v - acc)
        out[i] = acc
    return out


def exposure_plan(mean_rgb: np.ndarray, fps: float, *, sensitivity: float, full_well: float, ae_s: float,
                  awb_s: float, daylight_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: exposure time t (s), analogue gain, and white-balance gains (T, 3).

    ``mean_rgb`` (T, 3): frame-mean radiance (lux × reflectance) per channel.
    """
    luma = np.maximum(mean_rgb @ LUMA, 1e-6)
    want = np.exp(_lag(np.log(TARGET * full_well / (sensitivity * luma)), fps, ae_s))  # t × gain
    t_max = 0.9 / fps
    t_exp = np.clip(want, 1e-4, t_max)
    gain = np.clip(want / t_exp, 1.0, MAX_GAIN)
    if awb_s > 0:
        ratio = np.log(mean_rgb[:, 1:2] / np.maximum(mean_rgb, 1e-9))  # grey world: equalise the channel means
        wb = np.exp(np.stack([_lag(ratio[:, c], fps, awb_s) for c in range(3)], 1))
    else:
        wb = np.tile(daylight_rgb[1] / daylight_rgb, (len(luma), 1))
    return t_exp, gain, wb


def expose(noise_seed: int | None, rad: np.ndarray, t_exp: float, gain: float, wb: np.ndarray, *, sensitivity: float,
           full_well: float, read_noise: float, binning: float, ccm: float) -> np.ndarray:
    """Radiance (H, W, 3) float32 → uint8 sRGB frame through the sensor and the colour pipeline.

    Noise comes from OpenCV's generator (``cv2.randn``, 4× faster than numpy's Gaussian draws
    here), seeded with ``noise_seed`` when given (the renderer seeds it once per chunk and draws the
    chunk's frames in order, so the frames are a deterministic function of the seed).
    """
    k = np.float32(sensitivity * t_exp * binning)
    e = np.maximum(rad, 0) * k
    fw = np.float32(full_well * binning)
    sd = np.sqrt(e + np.float32(read_noise**2 * binning))
    if noise_seed is not None:
        cv2.setRNGSeed(int(noise_seed))
    z = np.empty((e.shape[0], e.size // e.shape[0]), np.float32)
    cv2.randn(z, 0.0, 1.0)
    e += z.reshape(e.shape) * sd
    np.clip(e, 0, fw, out=e)
    e = np.floor(e * np.float32(1023 / fw)) * np.float32(4095 / 1023)  # 10-bit ADC, then 12-bit LUT scale
    m = ((np.eye(3) * (1 - ccm) + CCM * ccm) @ np.diag(wb * gain)).astype(np.float32)
    v = cv2.transform(e, m)
    idx = np.clip(v, 0, 4095).astype(np.int32)
    return np.take(srgb_lut(), idx)


def encode_decode(frames: np.ndarray, codec: str, fps: float, *, crf: float, jpeg_quality: int) -> np.ndarray:
    """Compress and decode a chunk of uint8 RGB frames (t, H, W, 3); ``none`` returns them as they are."""
    if codec == "none":
        return frames
    if codec == "mjpeg":
        out = np.empty_like(frames)
        params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        for i, f in enumerate(frames):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(f[:, :, ::-1]), params)
            if not ok:  # pragma: no cover - cv2 failure
                raise RuntimeError("synthetic: JPEG encoding failed")
            out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
        return out
    if codec != "h264":
        raise ValueError(f"synthetic: unknown codec {codec!r}; valid: none, h264, mjpeg")
    import av  # PyAV: FFmpeg's libx264 (opencv-python's VideoWriter cannot write H.264 here)

    t, h, w = frames.shape[:3]
    ph, pw = h + (h % 2), w + (w % 2)  # 4:2:0 needs even sizes
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = pw, ph, "yuv420p"
    enc.time_base = Fraction(1, max(1, int(round(fps))))
    enc.options = {"crf": str(int(round(crf))), "preset": "veryfast", "threads": "1", "g": str(t), "bf": "0"}
    packets = []
    for i, f in enumerate(frames):
        if (ph, pw) != (h, w):
            f = np.pad(f, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf.pts = i
        packets += enc.encode(vf)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264", "r")
    dec.options = {"threads": "1"}
    out = [fr.to_ndarray(format="rgb24") for p in packets for fr in dec.decode(p)]
    out += [fr.to_ndarray(format="rgb24") for fr in dec.decode(None)]
    if len(out) != t:  # pragma: no cover - codec failure
        raise RuntimeError(f"synthetic: H.264 round trip returned {len(out)} of {t} frames")
    return np.stack(out)[:, :h, :w]
