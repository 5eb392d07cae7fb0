"""Checkpoints keep their input shape.

A neural method's weights are tied to the clip they were trained on: PhysNet's published PURE weights
evaluated at ``trainer=quick``'s 64 frames × 36×36 instead of their 128 × 72×72 gave an HR error about
10× larger, silently. So:

* checkpoints the trainer writes hold the input spec beside the weights (:func:`wrap`):
  ``{"model": state_dict, "input_spec": {"frames", "size", "transforms", "label", "fps"}}`` — still a
  plain dict of tensors and primitives, loadable with ``torch.load(weights_only=True)`` and by
  :func:`benchmark.method.read_state_dict` (which unwraps ``"model"``);
* :func:`checkpoint_shape` reads it back; an external checkpoint (an rPPG-Toolbox ``.pth``, a bare
  state dict) gets the method's reference shape (its class ``input``, not a preset's);
* :func:`guard` (called by the runner before the method is built) evaluates a checkpoint at its shape:
  a preset's shape (``trainer=quick``) is replaced by the checkpoint's, with a note; a shape the user
  set (command line or a variant YAML) that differs is refused, naming both shapes, unless
  ``method.allow_shape_change=true``. Transforms a checkpoint was trained with that differ from the
  method's are always refused (the model would see other channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.settings import COMMAND_LINE, ConfigError

#: Key of the input spec inside checkpoints written by the trainer.
SPEC_KEY = "input_spec"


class ShapeChangeError(ConfigError):
    """A checkpoint would be evaluated at another input shape than it was trained with."""


def wrap(state_dict: Mapping[str, Any], spec: Any, fps: float | None) -> dict[str, Any]:
    """A checkpoint dict holding the weights and the input spec they were trained with; the bare state
    dict for a trainee without an input spec (the label lab's quantizers train on labels, not video)."""
    if spec is None:
        return dict(state_dict)
    return {"model": dict(state_dict), SPEC_KEY: {"frames": int(spec.frames), "size": int(spec.size),
                                                  "transforms": list(spec.transforms), "label": str(spec.label),
                                                  "fps": None if fps is None else float(fps)}}


def unwrap(obj: Any) -> Any:
    """The state dict of a checkpoint written by :func:`wrap` (anything else is returned as it is)."""
    if isinstance(obj, dict) and SPEC_KEY in obj and isinstance(obj.get("model"), dict):
        return obj["model"]
    return obj


def recorded_spec(path: str | Path) -> dict[str, Any] | None:
    """The input spec stored in a checkpoint, or None (external checkpoint)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path} (method.checkpoint)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the method's own loader
        return None
    spec = obj.get(SPEC_KEY) if isinstance(obj, dict) else None
    return dict(spec) if isinstance(spec, Mapping) else None


def reference_shape(method_cls: type) -> dict[str, Any]:
    spec = method_cls.input
    return {"frames": int(spec.frames), "size": int(spec.size), "transforms": list(spec.transforms), "fps": None}


def checkpoint_shape(path: str | Path, method_cls: type) -> tuple[dict[str, Any], str]:
    """(shape the checkpoint was trained with, where that comes from)."""
    rec = recorded_spec(path)
    if rec is not None:
        return ({"frames": int(rec["frames"]), "size": int(rec["size"]), "transforms": list(rec.get("transforms") or []),
                 "fps": rec.get("fps")}, "recorded in the checkpoint")
    return reference_shape(method_cls), f"external checkpoint: {method_cls.name}'s reference shape"


def shape_text(shape: Mapping[str, Any]) -> str:
    """The shape as said in messages.

    >>> shape_text({"frames": 128, "size": 72})
    '128 frames × 72×72'
    """
    return f"{shape['frames']} frames × {shape['size']}×{shape['size']}"


def guard(settings: Any, method_cls: type, allow: bool = False, echo: Any = print) -> Any:
    """Make ``settings`` (:class:`benchmark.settings.Settings`) evaluate ``method.checkpoint`` at its
    trained shape; see the module docstring. Returns the (possibly updated) settings."""
    mcfg = settings.method
    ckpt = mcfg.get("checkpoint")
    if not settings.neural or not ckpt:
        return settings
    trained, source = checkpoint_shape(ckpt, method_cls)
    default = method_cls.input
    current = {"frames": int(mcfg.get("frames") or default.frames), "size": int(mcfg.get("size") or default.size)}
    own_tf = list(default.transforms)
    if trained["transforms"] and list(trained["transforms"]) != own_tf and "transforms" not in method_cls.Config.__dataclass_fields__:
        raise ShapeChangeError(f"{ckpt}: trained on frame transforms {trained['transforms']} ({source}); "
                               f"method {method_cls.name!r} feeds {own_tf}")
    differ = [k for k in ("frames", "size") if current[k] != trained[k]]
    if not differ:
        return settings
    by_user = [k for k in differ if settings.sources.get(f"method.{k}") == COMMAND_LINE or str(settings.sources.get(f"method.{k}", "")).startswith("variant")]
    if allow:
        echo(f"[shape] {ckpt}: trained at {shape_text(trained)} ({source}); evaluating at {shape_text(current)} "
             "because method.allow_shape_change=true")
        return settings
    if by_user:
        who = ", ".join(f"method.{k}={current[k]} ({settings.sources.get(f'method.{k}')})" for k in by_user)
        raise ShapeChangeError(f"{ckpt}: trained at {shape_text(trained)} ({source}); {who} would evaluate it at "
                               f"{shape_text(current)}. Refused: drop the override, or set method.allow_shape_change=true "
                               "to evaluate at another shape on purpose")
    for k in differ:
        preset = settings.sources.get(f"method.{k}", "method default")
        mcfg[k] = trained[k]
        settings.sources[f"method.{k}"] = f"checkpoint ({source}; {preset} overruled)"
    echo(f"[shape] {ckpt}: evaluated at its trained shape {shape_text(trained)} ({source}), not at "
         f"{shape_text(current)} of the preset; set method.frames/size and method.allow_shape_change=true to change it")
    return settings
