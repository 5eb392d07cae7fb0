"""DeepPhys (Chen & McDuff, ECCV 2018): a two-branch 2D convolutional attention network.

Re-implemented from the rPPG-Toolbox model ``neural_methods/model/DeepPhys.py`` and recipe
``configs/train_configs/*_DEEPPHYS_BASIC.yaml``; layer table in ``shared/reference/models.md`` §5.
Module attribute names (including the reference's ``apperance`` spelling) are the reference's, so
a toolbox checkpoint loads with ``load_state_dict(strict=True)``.

The model is per frame: a clip (B, 6, T, H, W) — channels 0–2 diff-normalized (motion branch),
3–5 standardized (appearance branch) — is flattened to B·T frames (B·T, 6, H, W), as the toolbox
trainer does, and the per-frame outputs are folded back to (B, T). Training target: the
diff-normalized label, MSE. Params at 72×72: 2,228,643 (the first dense layer holds 2,097,280 and
is the only size-dependent layer); MACs 227.0 M per frame, 40.87 G per 180-frame clip.

The supported frame sizes are the ones the toolbox's dense layer is declared for, 36, 72, 96, and
128 (the last from the TS-CAN / LQ-rPPG copies); any other size raises ``MethodConfigError``.

This file also holds the parts the CAN family shares (:class:`Attention_mask`, the flattening
and the MSE loss in :class:`CANMethod`); ``tscan.py`` and ``efficientphys.py`` build on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.method import InputSpec, MethodConfigError, NeuralMethod
from benchmark.registry import register_method

#: Frame size → width of the flattened feature map (64 · s², s = ⌊(⌊(size−2)/2⌋ − 2)/2⌋).
DENSE_WIDTH = {36: 3136, 72: 16384, 96: 30976, 128: 57600}


def dense_width(img_size: int) -> int:
    """Input width of ``final_dense_1`` for a frame size; ValueError naming the valid sizes."""
    if img_size not in DENSE_WIDTH:
        raise ValueError(
            f"unsupported frame size {img_size}: the dense layer is defined for sizes {sorted(DENSE_WIDTH)}"
        )
    return DENSE_WIDTH[img_size]


class Attention_mask(nn.Module):  # noqa: N801 - the reference's class name
    """Soft-attention normalisation: m / Σ_{H,W} m · H·W · 0.5 (each mask has spatial mean 0.5)."""

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        return x / x.sum(dim=(2, 3), keepdim=True) * (h * w * 0.5)


class DeepPhys(nn.Module):
    """DeepPhys as in the toolbox. Input (N, 2·in_channels, H, W), output (N, 1)."""

    def __init__(
        self,
        in_channels: int = 3,
        nb_filters1: int = 32,
        nb_filters2: int = 64,
        kernel_size: int = 3,
        dropout_rate1: float = 0.25,
        dropout_rate2: float = 0.5,
        pool_size: tuple[int, int] = (2, 2),
        nb_dense: int = 128,
        img_size: int = 36,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.img_size = img_size
        k, f1, f2 = kernel_size, nb_filters1, nb_filters2
        width = dense_width(img_size)
        # Motion branch: "same" conv then "valid" conv, twice.
        self.motion_conv1 = nn.Conv2d(in_channels, f1, k, padding=1)
        self.motion_conv2 = nn.Conv2d(f1, f1, k)
        self.motion_conv3 = nn.Conv2d(f1, f2, k, padding=1)
        self.motion_conv4 = nn.Conv2d(f2, f2, k)
        # Appearance branch, same shapes.
        self.apperance_conv1 = nn.Conv2d(in_channels, f1, k, padding=1)
        self.apperance_conv2 = nn.Conv2d(f1, f1, k)
        self.apperance_conv3 = nn.Conv2d(f1, f2, k, padding=1)
        self.apperance_conv4 = nn.Conv2d(f2, f2, k)
        # 1×1 attention convs on the appearance features.
        self.apperance_att_conv1 = nn.Conv2d(f1, 1, 1)
        self.attn_mask_1 = Attention_mask()
        self.apperance_att_conv2 = nn.Conv2d(f2, 1, 1)
        self.attn_mask_2 = Attention_mask()
        self.avg_pooling_1 = nn.AvgPool2d(pool_size)
        self.avg_pooling_2 = nn.AvgPool2d(pool_size)
        self.avg_pooling_3 = nn.AvgPool2d(pool_size)
        self.dropout_1 = nn.Dropout(dropout_rate1)
        self.dropout_2 = nn.Dropout(dropout_rate1)
        self.dropout_3 = nn.Dropout(dropout_rate1)
        self.dropout_4 = nn.Dropout(dropout_rate2)
        self.final_dense_1 = nn.Linear(width, nb_dense)
        self.final_dense_2 = nn.Linear(nb_dense, 1)

    def forward(self, inputs: Tensor) -> Tensor:
        c = self.in_channels
        diff_input, raw_input = inputs[:, :c], inputs[:, c:]
        d2 = torch.tanh(self.motion_conv2(torch.tanh(self.motion_conv1(diff_input))))
        r2 = torch.tanh(self.apperance_conv2(torch.tanh(self.apperance_conv1(raw_input))))
        g1 = self.attn_mask_1(torch.sigmoid(self.apperance_att_conv1(r2)))
        d4 = self.dropout_1(self.avg_pooling_1(d2 * g1))
        r4 = self.dropout_2(self.avg_pooling_2(r2))
        d6 = torch.tanh(self.motion_conv4(torch.tanh(self.motion_conv3(d4))))
        r6 = torch.tanh(self.apperance_conv4(torch.tanh(self.apperance_conv3(r4))))
        g2 = self.attn_mask_2(torch.sigmoid(self.apperance_att_conv2(r6)))
        d8 = self.dropout_3(self.avg_pooling_3(d6 * g2))
        d10 = torch.tanh(self.final_dense_1(d8.flatten(1)))
        return self.final_dense_2(self.dropout_4(d10))


def frames_to_batch(x: Tensor) -> Tensor:
    """(B, C, T, H, W) → (B·T, C, H, W), frame-major within each clip (the toolbox's NDCHW view)."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


class CANMethod(NeuralMethod):
    """Shared method logic of the per-frame CAN family (DeepPhys, TS-CAN, EfficientPhys).

    Frames are flattened into the batch, the per-frame outputs folded back to (B, T), and the loss
    is the MSE to the diff-normalized label (toolbox trainers; models.md §5–7).
    """

    #: TB ``*_DEEPPHYS_BASIC`` / ``*_TSCAN_BASIC`` / ``*_EFFICIENTPHYS``: AdamW 9e-3 (wd 0),
    #: OneCycleLR per batch, 30 epochs, batch 4 chunks, last epoch tested (``USE_LAST_EPOCH: True``).
    paper_recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",
        "lr": 9e-3,
        "weight_decay": 0.0,
        "epochs": 30,
        "batch_size": 4,
        "scheduler": "onecycle",
        "select": "last",
    }
    #: CPU preset: 60-frame chunks (a multiple of TS-CAN's frame_depth 10) at 36×36, the smallest
    #: size the dense layer supports. ≈ 0.1–0.2 s forward+backward per clip on one core.
    quick: ClassVar[dict[str, Any]] = {"frames": 60, "size": 36}

    @dataclass
    class Config(NeuralMethod.Config):
        dropout_rate1: float = 0.25  # after each pooling (toolbox default; its DROP_RATE is unused)
        dropout_rate2: float = 0.5   # before the last dense layer

    def check_size(self) -> int:
        size = self.input_spec().size
        if size not in DENSE_WIDTH:
            raise MethodConfigError(
                f"{self.name}: unsupported frame size {size}; the dense layer after the conv stack "
                f"is defined for sizes {sorted(DENSE_WIDTH)} only"
            )
        return size

    def forward(self, model: nn.Module, batch: dict) -> Tensor:
        x = batch["frames"]
        self.check_clip(x, check_frames=False)
        b, t = x.shape[0], x.shape[2]
        return model(frames_to_batch(x)).view(b, t)

    def loss(self, out: Any, batch: dict, *, epoch: int = 0, num_epochs: int = 1) -> Tensor:
        label = batch["label"].to(out.dtype)
        if label.shape != out.shape:
            raise ValueError(f"{self.name}: label shape {tuple(label.shape)} != output {tuple(out.shape)}")
        return F.mse_loss(out, label)


@register_method("deepphys")
class DeepPhysMethod(CANMethod):
    """DeepPhys: motion branch on diff-normalized frames, attention from standardized frames."""

    input: ClassVar[InputSpec] = InputSpec(
        frames=180, size=72, transforms=("diff_normalized", "standardized"), label="diff_normalized"
    )

    def build_model(self) -> nn.Module:
        size = self.check_size()
        return DeepPhys(
            in_channels=3,
            dropout_rate1=self.cfg.dropout_rate1,
            dropout_rate2=self.cfg.dropout_rate2,
            img_size=size,
        )
