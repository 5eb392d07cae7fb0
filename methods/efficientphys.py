"""EfficientPhys (Liu et al., WACV 2023): TS-CAN's motion branch with self-attention masks and a
learned normalisation of raw frame differences, no appearance branch.

Re-implemented from the rPPG-Toolbox model ``neural_methods/model/EfficientPhys.py``, trainer
``neural_methods/trainer/EfficientPhysTrainer.py`` and recipe ``configs/train_configs/*_EFFICIENTPHYS.yaml``;
see ``shared/reference/models.md`` §7. Attribute names are the reference's (including the
``apperance_att_conv*`` names of convs that read motion features).

Input: standardized frames (B, 3, T, H, W). The network takes the first difference of its input
frames (``torch.diff``) and normalises it with ``BatchNorm2d(3)``, so it needs T+1 frames for T
outputs; like the toolbox trainer we append a copy of the last frame. Params 2,163,081 at 72×72;
MACs 114.7 M per output frame (20.64 G per 180-frame clip).

Difference from the toolbox, on purpose: the toolbox flattens the whole batch to (N·T, …),
appends one frame and differences along the flattened axis, so the last output of every chunk but
the last is "first frame of the next chunk − own last frame", mixing two unrelated clips. Here
each chunk gets its own appended frame and the difference is taken inside the chunk: output t is
f_{t+1} − f_t and the last output of each chunk sees a zero difference, the same convention as the
diff-normalized label (zero appended at the end). With one chunk the two agree exactly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from benchmark.method import InputSpec
from benchmark.registry import register_method
from methods.deepphys import Attention_mask, dense_width, frames_to_batch
from methods.tscan import TSM, TSMMethod


class EfficientPhys(nn.Module):
    """EfficientPhys as in the toolbox.

    ``forward(inputs, n_chunks)``: ``inputs`` (n_chunks·(T+1), 3, H, W) holds ``n_chunks`` runs of
    T+1 consecutive frames; each run is differenced on its own → n_chunks·T outputs (N, 1).
    ``n_chunks=1`` is the reference's forward. T must be a multiple of ``frame_depth``.
    """

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
        frame_depth: int = 20,
        img_size: int = 36,
    ) -> None:
        super().__init__()
        k, f1, f2 = kernel_size, nb_filters1, nb_filters2
        width = dense_width(img_size)
        self.TSM_1 = TSM(n_segment=frame_depth)
        self.TSM_2 = TSM(n_segment=frame_depth)
        self.TSM_3 = TSM(n_segment=frame_depth)
        self.TSM_4 = TSM(n_segment=frame_depth)
        self.motion_conv1 = nn.Conv2d(in_channels, f1, k, padding=1)
        self.motion_conv2 = nn.Conv2d(f1, f1, k)
        self.motion_conv3 = nn.Conv2d(f1, f2, k, padding=1)
        self.motion_conv4 = nn.Conv2d(f2, f2, k)
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
        self.batch_norm = nn.BatchNorm2d(in_channels)

    def forward(self, inputs: Tensor, n_chunks: int = 1) -> Tensor:
        n, c, h, w = inputs.shape
        if n_chunks < 1 or n % n_chunks or n // n_chunks < 2:
            raise ValueError(f"EfficientPhys: {n} input frames cannot be split into {n_chunks} runs of >= 2")
        x = torch.diff(inputs.view(n_chunks, n // n_chunks, c, h, w), dim=1)   # (n_chunks, T, c, h, w)
        x = self.batch_norm(x.reshape(-1, c, h, w))
        d1 = self.TSM_2(torch.tanh(self.motion_conv1(self.TSM_1(x))))
        d2 = torch.tanh(self.motion_conv2(d1))
        g1 = self.attn_mask_1(torch.sigmoid(self.apperance_att_conv1(d2)))
        d4 = self.TSM_3(self.dropout_1(self.avg_pooling_1(d2 * g1)))
        d5 = self.TSM_4(torch.tanh(self.motion_conv3(d4)))
        d6 = torch.tanh(self.motion_conv4(d5))
        g2 = self.attn_mask_2(torch.sigmoid(self.apperance_att_conv2(d6)))
        d8 = self.dropout_3(self.avg_pooling_3(d6 * g2))
        d10 = torch.tanh(self.final_dense_1(d8.flatten(1)))
        return self.final_dense_2(self.dropout_4(d10))


@register_method("efficientphys")
class EfficientPhysMethod(TSMMethod):
    """EfficientPhys: standardized frames in, diff-normalized label, MSE; per-chunk differencing."""

    input: ClassVar[InputSpec] = InputSpec(
        frames=180, size=72, transforms=("standardized",), label="diff_normalized"
    )

    def build_model(self) -> nn.Module:
        size = self.check_size()
        return EfficientPhys(
            in_channels=3,
            dropout_rate1=self.cfg.dropout_rate1,
            dropout_rate2=self.cfg.dropout_rate2,
            frame_depth=self.frame_depth(),
            img_size=size,
        )

    def forward(self, model: nn.Module, batch: dict) -> Tensor:
        x = batch["frames"]
        self.check_clip(x, check_frames=False)
        b, t = x.shape[0], x.shape[2]
        frames = torch.cat([x, x[:, :, -1:]], dim=2)                 # (B, 3, T+1, H, W)
        return model(frames_to_batch(frames), n_chunks=b).view(b, t)
