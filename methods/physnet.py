"""PhysNet (Yu, Li & Zhao, BMVC 2019): a 3D-CNN encoder–decoder that regresses the rPPG waveform.

Re-implemented from the rPPG-Toolbox model ``neural_methods/model/PhysNet.py``
(``PhysNet_padding_Encoder_Decoder_MAX``) and recipe ``configs/train_configs/*_PHYSNET_BASIC.yaml``;
layer table and figures in ``shared/reference/models.md`` §4. Module attribute names are the
reference's, so a toolbox checkpoint loads with ``load_state_dict(strict=True)``.

Input (B, 3, T, H, W) diff-normalized frames; reference shape T = 128, 72×72; output (B, T).
Params 768,577 (independent of T, H, W); 17.56 G MACs per reference clip.

Differences from the toolbox, on purpose:

* the loss is the per-sample negative Pearson of :func:`benchmark.losses.neg_pearson` with an
  ``eps`` (the toolbox's has none and gives NaN on a constant signal). The toolbox first z-scores
  prediction and label with one mean/std over the whole batch; Pearson is invariant to that, so it
  is skipped;
* a clip whose T differs from the ``frames`` the model was built for raises an error: in the
  reference, ``AdaptiveAvgPool3d((frames, 1, 1))`` would silently resample time while the final
  ``view(-1, T)`` scrambles the samples of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from benchmark.losses import neg_pearson
from benchmark.method import InputSpec, MethodConfigError, NeuralMethod
from benchmark.registry import register_method


def _conv_bn_relu(c_in: int, c_out: int, kernel, padding) -> nn.Sequential:
    """Conv3d (bias) → BatchNorm3d → ReLU; indices 0/1 match the reference's Sequential keys."""
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel, stride=1, padding=padding),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    )


def _up_bn_elu(channels: int) -> nn.Sequential:
    """Transposed Conv3d doubling T (k 4, s 2, p 1 on time; 1×1 in space) → BN → ELU."""
    return nn.Sequential(
        nn.ConvTranspose3d(channels, channels, kernel_size=(4, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),
        nn.BatchNorm3d(channels),
        nn.ELU(),
    )


class PhysNet_padding_Encoder_Decoder_MAX(nn.Module):  # noqa: N801 - the reference's class name
    """PhysNet as in the toolbox; ``frames`` must equal the clip length T (a multiple of 4)."""

    def __init__(self, frames: int = 128) -> None:
        super().__init__()
        if frames % 4:
            raise ValueError(f"PhysNet: frames must be a multiple of 4 (two temporal /2 pools), got {frames}")
        self.frames = frames
        self.ConvBlock1 = _conv_bn_relu(3, 16, (1, 5, 5), (0, 2, 2))
        self.ConvBlock2 = _conv_bn_relu(16, 32, 3, 1)
        self.ConvBlock3 = _conv_bn_relu(32, 64, 3, 1)
        self.ConvBlock4 = _conv_bn_relu(64, 64, 3, 1)
        self.ConvBlock5 = _conv_bn_relu(64, 64, 3, 1)
        self.ConvBlock6 = _conv_bn_relu(64, 64, 3, 1)
        self.ConvBlock7 = _conv_bn_relu(64, 64, 3, 1)
        self.ConvBlock8 = _conv_bn_relu(64, 64, 3, 1)
        self.ConvBlock9 = _conv_bn_relu(64, 64, 3, 1)
        self.upsample = _up_bn_elu(64)
        self.upsample2 = _up_bn_elu(64)
        self.ConvBlock10 = nn.Conv3d(64, 1, (1, 1, 1), stride=1, padding=0)
        self.MaxpoolSpa = nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))
        self.MaxpoolSpaTem = nn.MaxPool3d((2, 2, 2), stride=2)
        self.poolspa = nn.AdaptiveAvgPool3d((frames, 1, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """x (B, 3, T, H, W) → (rPPG (B, T), input, block-5 features, block-7 features)."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"PhysNet expects (B, 3, T, H, W), got {tuple(x.shape)}")
        length = x.shape[2]
        if length != self.frames:
            raise ValueError(f"PhysNet was built for T={self.frames} frames but got a clip of T={length}")
        x_visual = x
        x = self.MaxpoolSpa(self.ConvBlock1(x))               # (B, 16, T, H/2, W/2)
        x = self.ConvBlock2(x)                                # (B, 32, T, H/2, W/2)
        x = self.MaxpoolSpaTem(self.ConvBlock3(x))            # (B, 64, T/2, H/4, W/4)
        x_visual3232 = self.ConvBlock5(self.ConvBlock4(x))    # (B, 64, T/2, H/4, W/4)
        x = self.MaxpoolSpaTem(x_visual3232)                  # (B, 64, T/4, H/8, W/8)
        x_visual1616 = self.ConvBlock7(self.ConvBlock6(x))    # (B, 64, T/4, H/8, W/8)
        x = self.MaxpoolSpa(x_visual1616)                     # (B, 64, T/4, H/16, W/16)
        x = self.ConvBlock9(self.ConvBlock8(x))
        x = self.upsample2(self.upsample(x))                  # (B, 64, T, H/16, W/16)
        x = self.ConvBlock10(self.poolspa(x))                 # (B, 1, T, 1, 1)
        return x.view(-1, length), x_visual, x_visual3232, x_visual1616


@register_method("physnet")
class PhysNet(NeuralMethod):
    """PhysNet with the toolbox recipe (diff-normalized frames and labels, negative Pearson)."""

    input: ClassVar[InputSpec] = InputSpec(
        frames=128, size=72, transforms=("diff_normalized",), label="diff_normalized"
    )
    #: TB ``*_PHYSNET_BASIC.yaml``: Adam 9e-3 without weight decay, OneCycleLR per batch, 30 epochs,
    #: batch 4, test with the last epoch (``USE_LAST_EPOCH: True`` in the PURE→UBFC config).
    paper_recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 9e-3,
        "weight_decay": 0.0,
        "epochs": 30,
        "batch_size": 4,
        "scheduler": "onecycle",
        "select": "last",
    }
    #: CPU preset: 64 frames at 36×36 (T a multiple of 4; parameters unchanged). One forward+backward
    #: ≈ 0.2 s per clip on one core; 5 epochs × 10 chunks train in ≈ 5 s.
    quick: ClassVar[dict[str, Any]] = {"frames": 64, "size": 36}

    @dataclass
    class Config(NeuralMethod.Config):
        """PhysNet has no architecture hyper-parameters (the toolbox's DROP_RATE is unused)."""

    def build_model(self) -> nn.Module:
        spec = self.input_spec()
        if spec.frames % 4:
            raise MethodConfigError(
                f"physnet: frames must be a multiple of 4 (two temporal /2 pools), got {spec.frames}"
            )
        if spec.size < 16:
            raise MethodConfigError(f"physnet: size must be >= 16 (four spatial /2 pools), got {spec.size}")
        return PhysNet_padding_Encoder_Decoder_MAX(frames=spec.frames)

    def forward(self, model: nn.Module, batch: dict) -> tuple[Tensor, ...]:
        x = batch["frames"]
        self.check_clip(x)
        return model(x)

    def signal(self, out: Any) -> Tensor:
        return out[0]

    def loss(self, out: Any, batch: dict, *, epoch: int = 0, num_epochs: int = 1) -> Tensor:
        return neg_pearson(self.signal(out), batch["label"].to(torch.float32))
