"""TS-CAN (Liu et al., NeurIPS 2020): DeepPhys with temporal shift modules on the motion branch.

Re-implemented from the rPPG-Toolbox model ``neural_methods/model/TS_CAN.py`` (class ``TSCAN``)
and recipe ``configs/train_configs/*_TSCAN_BASIC.yaml``; see ``shared/reference/models.md`` §6.
Same parameters (2,228,643 at 72×72) and MACs (40.87 G per 180-frame clip) as DeepPhys: the four
temporal shift modules have no weights and no multiply–accumulates.

A temporal shift module views the (N·T, C, H, W) frame batch as segments of ``frame_depth``
consecutive frames and moves the first C//3 channels one frame earlier and the next C//3 one frame
later, zero-filled at the segment edges. The toolbox trainer truncates the flattened batch to a
multiple of ``frame_depth``; here the chunk length itself must be a multiple of ``frame_depth`` (10
in the toolbox configs), checked when the model is built, so no frame is dropped and no segment
straddles two clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from benchmark.method import InputSpec, MethodConfigError
from benchmark.registry import register_method
from methods.deepphys import CANMethod, DeepPhys


class TSM(nn.Module):
    """Temporal shift (Lin et al., ICCV 2019) over segments of ``n_segment`` frames, zero padding."""

    def __init__(self, n_segment: int = 10, fold_div: int = 3) -> None:
        super().__init__()
        self.n_segment = n_segment
        self.fold_div = fold_div

    def forward(self, x: Tensor) -> Tensor:
        nt, c, h, w = x.shape
        if nt % self.n_segment:
            raise ValueError(f"TSM: {nt} frames is not a multiple of the segment length {self.n_segment}")
        x = x.view(nt // self.n_segment, self.n_segment, c, h, w)
        fold = c // self.fold_div
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]                        # frame t takes frame t+1
        out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]    # frame t takes frame t−1
        out[:, :, 2 * fold :] = x[:, :, 2 * fold :]                 # the rest is not shifted
        return out.view(nt, c, h, w)


class TSCAN(DeepPhys):
    """TS-CAN as in the toolbox: DeepPhys's layers (same names, so the same state-dict keys) plus
    four parameter-free temporal shifts on the motion branch. Input (N·T, 2·in_channels, H, W),
    N·T a multiple of frame_depth."""

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
        super().__init__(in_channels, nb_filters1, nb_filters2, kernel_size, dropout_rate1, dropout_rate2,
                         pool_size, nb_dense, img_size)
        self.TSM_1 = TSM(n_segment=frame_depth)
        self.TSM_2 = TSM(n_segment=frame_depth)
        self.TSM_3 = TSM(n_segment=frame_depth)
        self.TSM_4 = TSM(n_segment=frame_depth)

    def forward(self, inputs: Tensor) -> Tensor:
        c = self.in_channels
        diff_input, raw_input = self.TSM_1(inputs[:, :c]), inputs[:, c:]
        d1 = self.TSM_2(torch.tanh(self.motion_conv1(diff_input)))
        d2 = torch.tanh(self.motion_conv2(d1))
        r2 = torch.tanh(self.apperance_conv2(torch.tanh(self.apperance_conv1(raw_input))))
        g1 = self.attn_mask_1(torch.sigmoid(self.apperance_att_conv1(r2)))
        d4 = self.TSM_3(self.dropout_1(self.avg_pooling_1(d2 * g1)))
        r4 = self.dropout_2(self.avg_pooling_2(r2))
        d5 = self.TSM_4(torch.tanh(self.motion_conv3(d4)))
        d6 = torch.tanh(self.motion_conv4(d5))
        r6 = torch.tanh(self.apperance_conv4(torch.tanh(self.apperance_conv3(r4))))
        g2 = self.attn_mask_2(torch.sigmoid(self.apperance_att_conv2(r6)))
        d8 = self.dropout_3(self.avg_pooling_3(d6 * g2))
        d10 = torch.tanh(self.final_dense_1(d8.flatten(1)))
        return self.final_dense_2(self.dropout_4(d10))


class TSMMethod(CANMethod):
    """CAN methods with temporal-shift modules (TS-CAN, EfficientPhys): chunks split into whole
    ``frame_depth`` segments."""

    @dataclass
    class Config(CANMethod.Config):
        frame_depth: int = 10  # temporal-shift segment length (toolbox MODEL.{TSCAN,EFFICIENTPHYS}.FRAME_DEPTH)

    def frame_depth(self) -> int:
        """The configured ``frame_depth``; MethodConfigError unless it divides the chunk length."""
        frames, depth = self.input_spec().frames, int(self.cfg.frame_depth)
        if depth < 1 or frames % depth:
            raise MethodConfigError(
                f"{self.name}: chunk length {frames} must be a multiple of frame_depth={depth} "
                "(temporal shift segments must not straddle two clips)"
            )
        return depth


@register_method("tscan")
class TSCANMethod(TSMMethod):
    """TS-CAN: DeepPhys inputs and loss; the chunk length must be a multiple of ``frame_depth``."""

    input: ClassVar[InputSpec] = InputSpec(
        frames=180, size=72, transforms=("diff_normalized", "standardized"), label="diff_normalized"
    )

    def build_model(self) -> nn.Module:
        size = self.check_size()
        return TSCAN(
            in_channels=3,
            dropout_rate1=self.cfg.dropout_rate1,
            dropout_rate2=self.cfg.dropout_rate2,
            frame_depth=self.frame_depth(),
            img_size=size,
        )
