"""Base classes every method derives from.

* :class:`UnsupervisedMethod` — ``predict(frames, fps) -> signal`` on a whole record.
* :class:`NeuralMethod` — says what its input is (:class:`InputSpec`), builds its ``nn.Module``,
  defines its loss and how to read the rPPG waveform out of the model output. The one trainer
  (``benchmark/trainer.py``) drives it; a method that trains in several phases (LQ-rPPG) declares
  them with :meth:`NeuralMethod.phases` instead of bringing its own loop.

Each method's config is a dataclass named ``Config`` inside its class; ``create_method(name, **cfg)``
fills it, rejecting unknown keys with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class MethodConfigError(ValueError):
    """A method was configured with an unknown key or an invalid value."""


def read_state_dict(path: str | Path, error: type[Exception] = ValueError,
                    wrappers: tuple[str, ...] = ("model", "state_dict", "model_state_dict")) -> dict[str, Any]:
    """Read a torch checkpoint as a flat state dict, for every method's checkpoint loader.

    A missing file raises ``FileNotFoundError``; an unreadable file or a non-dict raises ``error``
    naming the file. A state nested under one of ``wrappers`` is unwrapped and DataParallel's
    ``module.`` prefix is dropped.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        # torch's own message advises weights_only=False, which runs any code the file carries:
        # unsafe for a downloaded checkpoint, so it is replaced (not chained) by safe advice
        raise error(f"{path}: {_load_failure(exc)}") from None
    if isinstance(state, dict):
        for key in wrappers:
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise error(f"{path}: expected a state dict, got {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_failure(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed, with safe advice only.

    >>> _load_failure(RuntimeError("Weights only load failed ... Unsupported global: GLOBAL numpy.dtype was not ..."))[:52]
    'holds a Python object (numpy.dtype) besides tensors;'
    >>> _load_failure(KeyError(101))  # what torch raises for a file that is neither zip nor pickle
    'not a readable torch checkpoint (KeyError: 101)'
    """
    import re

    text = str(exc)
    if "Weights only load failed" in text or "Unsupported global" in text:
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        what = f"a Python object ({m.group(1)})" if m else "Python objects"
        return (f"holds {what} besides tensors; checkpoints are loaded weights-only because unpickling other "
                "objects can run arbitrary code. Save just the weights where the checkpoint was made "
                "(torch.save(model.state_dict(), 'weights.pt')) or ask its publisher for a weights-only file")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"not a readable torch checkpoint ({type(exc).__name__}: {first})"


class Method:
    """Common part: config handling."""

    name: ClassVar[str] = "?"
    kind: ClassVar[str] = "?"

    @dataclass
    class Config:
        pass

    def __init__(self, **cfg: Any) -> None:
        valid = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(cfg) - valid)
        if unknown:
            raise MethodConfigError(
                f"method {self.name!r}: unknown config key(s) {unknown}; valid: {sorted(valid)}"
            )
        cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}
        self.cfg = self.Config(**cfg)


class UnsupervisedMethod(Method):
    """A training-free method. ``predict`` sees the whole record, as the toolbox does (DO_CHUNK False)."""

    kind: ClassVar[str] = "unsupervised"

    def predict(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """frames (T, H, W, 3) uint8 RGB (possibly a memmap) → rPPG signal (T,)."""
        raise NotImplementedError


@dataclass(frozen=True)
class InputSpec:
    """What a neural method eats.

    frames: chunk length T; size: H = W of the face crop; transforms: frame transforms
    concatenated on the channel axis in order (``raw``, ``diff_normalized``, ``standardized``);
    label: the training-label transform (``raw``, ``standardized``, ``diff_normalized``);
    the batch always holds frames as (B, C, T, H, W) float32 and labels as (B, T).
    """

    frames: int = 128
    size: int = 72
    transforms: tuple[str, ...] = ("diff_normalized",)
    label: str = "diff_normalized"


@dataclass
class Phase:
    """One training phase: which module is optimised, how a batch goes through it, its loss.

    ``module`` is called once to build (or fetch) the module. ``epochs``/``lr`` override the trainer
    config when set. ``on_end(module)`` runs after the phase's best (or last) weights are restored,
    e.g. to freeze quantizer codebooks for the next phase; it also runs when a resumed run skips a
    finished phase. ``select`` is ``"val_loss"`` or ``"val_mae"`` (HR MAE of the method's signal,
    only meaningful for the final phase).
    """

    name: str
    module: Callable[[], Any]
    forward: Callable[[Any, dict], Any]
    loss: Callable[..., Any]
    epochs: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    on_end: Callable[[Any], None] | None = None
    select: str | None = None


class NeuralMethod(Method):
    """A trainable method; the method file holds the ``nn.Module`` too.

    Subclasses set ``input`` (or override :meth:`input_spec` when it depends on config) and
    implement :meth:`build_model`, :meth:`loss` and :meth:`signal`.
    """

    kind: ClassVar[str] = "neural"
    input: ClassVar[InputSpec] = InputSpec()
    #: Published optimiser recipe (used by ``trainer=paper``); keys: optimizer, lr, weight_decay, epochs, batch_size.
    paper_recipe: ClassVar[dict[str, Any]] = {}
    #: CPU-quick preset (``trainer=quick``): input overrides ``frames``/``size`` and trainer overrides
    #: ``lr``/``epochs``/``batch_size`` that keep the architecture valid and train in minutes on a CPU.
    quick: ClassVar[dict[str, Any]] = {}
    #: Reference input shape for the efficiency table, (C, T, H, W); defaults from ``input``.
    reference_shape: ClassVar[tuple[int, int, int, int] | None] = None

    @dataclass
    class Config:
        frames: int | None = None
        size: int | None = None
        checkpoint: str | None = None

    def __init__(self, **cfg: Any) -> None:
        super().__init__(**cfg)
        self.model: Any = None

    # -- input ---------------------------------------------------------------------------------
    def input_spec(self) -> InputSpec:
        spec = self.input
        frames = getattr(self.cfg, "frames", None) or spec.frames
        size = getattr(self.cfg, "size", None) or spec.size
        return dataclasses.replace(spec, frames=int(frames), size=int(size))

    @property
    def in_channels(self) -> int:
        return 3 * len(self.input_spec().transforms)

    @property
    def signal_is_derivative(self) -> bool:
        """True when the model is trained on first-difference labels: evaluation integrates it."""
        return self.input_spec().label == "diff_normalized"

    # -- model ---------------------------------------------------------------------------------
    def build_model(self) -> Any:
        raise NotImplementedError

    def get_model(self) -> Any:
        if self.model is None:
            self.model = self.build_model()
        return self.model

    def forward(self, model: Any, batch: dict) -> Any:
        return model(batch["frames"])

    def loss(self, out: Any, batch: dict, *, epoch: int = 0, num_epochs: int = 1) -> Any:
        """Training loss: a scalar tensor or a dict of named terms with a ``"loss"`` total."""
        raise NotImplementedError

    def signal(self, out: Any) -> Any:
        """Model output → rPPG waveform (B, T)."""
        return out

    def check_clip(self, x: Any, *, check_frames: bool = True) -> None:
        """Validate a batch of clips (B, C, T, H, W) against :meth:`input_spec`; ValueError if not
        (``check_frames=False`` accepts any T, for models that take any clip length)."""
        spec = self.input_spec()
        want = (self.in_channels, spec.frames if check_frames else x.shape[2], spec.size, spec.size)
        if x.dim() != 5 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"method {self.name!r}: expected frames (B, C, T, H, W) with (C, T, H, W)={want} "
                f"(transforms {spec.transforms}), got {tuple(x.shape)}"
            )

    def prepare(self, train_data: Any) -> None:
        """Called by the trainer with the training ``ChunkDataset`` before the first phase (e.g. to
        fit training-free codebooks from the labels); nothing by default."""

    def label_transforms(self) -> list[Any]:
        """Label-transform specs (see ``benchmark.labels``) turning the (possibly noisy) label into
        this method's training target; appended after the ``labels`` config's transforms."""
        return [self.input_spec().label]

    def phases(self) -> list[Phase]:
        """Training phases in order; the last phase's module is the inference model."""
        return [Phase("main", self.get_model, self.forward, self.loss)]

    def inference_model(self) -> Any:
        return self.get_model()

    # -- checkpoints ---------------------------------------------------------------------------
    def load_checkpoint(self, path: str | Path) -> None:
        """Load published weights (an rPPG-Toolbox ``.pth`` state dict or our own checkpoint)."""
        path = Path(path)
        state = read_state_dict(path, MethodConfigError)
        model = self.inference_model()
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        bad_shape = [
            f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in sorted(set(own) & set(state))
            if tuple(state[k].shape) != tuple(own[k].shape)
        ]
        if missing or unexpected or bad_shape:
            parts = []
            if missing:
                parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
            if bad_shape:
                parts.append(f"shape mismatch {bad_shape[:3]}{' ...' if len(bad_shape) > 3 else ''}")
            raise MethodConfigError(
                f"{path}: checkpoint does not fit method {self.name!r} at input "
                f"{self.input_spec().frames}x{self.input_spec().size}x{self.input_spec().size}: " + "; ".join(parts)
            )
        model.load_state_dict(state, strict=True)

    # -- efficiency ----------------------------------------------------------------------------
    def example_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one clip at the reference shape."""
        if self.reference_shape is not None:
            return self.reference_shape
        spec = self.input_spec()
        return (self.in_channels, spec.frames, spec.size, spec.size)
