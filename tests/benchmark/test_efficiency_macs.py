"""MACs from torch's FLOP counter are halved FLOPs (issue 17: reporting FLOPs as MACs passed, as
only ``> 0`` was checked). A conv + linear network whose multiply-accumulate count is known by hand."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.efficiency import count_macs


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, kernel_size=3, bias=True)  # no padding: (4, 6, 6) → (2, 4, 4)
        self.fc = nn.Linear(8 * 2 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class _Method:
    @staticmethod
    def forward(model, batch):
        return model(batch["frames"])


def test_macs_of_a_known_conv_and_linear_network():
    conv = 8 * (2 * 4 * 4) * (3 * 3 * 3 * 3)  # out channels × output positions × (in channels × kernel volume)
    fc = 10 * 256
    assert count_macs(_Method(), _Net().eval(), (3, 4, 6, 6)) == conv + fc == 23_296
