"""Inception-v3 (Szegedy et al., CVPR 2016) as modified for WSOL by clovaai/wsolevaluation (``InceptionCam``).

Module and parameter names are torchvision's (``Conv2d_1a_3x3`` … ``Mixed_6e``; ``BasicConv2d`` = ``conv`` +
``bn`` with eps 0.001), so torchvision's checkpoint loads; ``Mixed_7a/7b/7c``, ``AuxLogits`` and ``fc`` are
dropped. wsolevaluation's modifications, reproduced here:

* ``Conv2d_1a_3x3`` gets padding 1 and the two stem max-pools (3×3, stride 2) get padding 1 and ``ceil_mode``;
* ``Mixed_6a`` (InceptionB) runs at stride 1 with padding 1; when ``large_feature_map`` is False a 3×3/2
  max-pool (``ceil_mode``) before it keeps the output at stride 16 (14×14 at 224 px); with it the output is
  28×28 (stride 8);
* two new layers ``SPG_A3_1b`` and ``SPG_A3_2b`` (3×3 conv 768 → 1024 → 1024 + ReLU, named as in
  wsolevaluation), each preceded, and the output followed, by dropout 0.5 in training.

torchvision's ``transform_input`` (re-normalising ImageNet-normalised input for the Google weights) is not
applied, as in wsolevaluation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.models.backbones.base import Backbone

_URL = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"


class BasicConv2d(nn.Module):
    """Conv (no bias) → BatchNorm (eps 0.001) → ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], **kwargs
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionA(nn.Module):
    """1×1, 5×5, double 3×3 and pooled branches (``Mixed_5b/5c/5d``)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Grid-reduction block ``Mixed_6a``, here at stride 1 with padding 1 (wsolevaluation)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=1, padding=1)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch3x3(x), branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    """Factorised 7×7 branches (``Mixed_6b``–``Mixed_6e``)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionV3(Backbone):
    """wsolevaluation's Inception-v3 trunk up to ``Mixed_6e`` plus the two ``SPG_A3`` convolutions (1024
    ch)."""

    imagenet_url = _URL
    dropped_prefixes = ("AuxLogits.", "Mixed_7a.", "Mixed_7b.", "Mixed_7c.", "fc.")
    new_layer_prefixes = ("SPG_A3_1b.", "SPG_A3_2b.")
    high_lr_prefixes = ("SPG_A3_1b.", "SPG_A3_2b.")
    insertion_points = ("Mixed_5d", "Mixed_6e", "SPG_A3_2b")  # wsolevaluation's ADL positions

    def __init__(self, *, large_feature_map: bool = False, dropout: float = 0.5) -> None:
        super().__init__("inception_v3", 1024, 8 if large_feature_map else 16)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"inception_v3: dropout must be in [0, 1), got {dropout}")
        self.large_feature_map = large_feature_map
        self.dropout = dropout
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2, padding=1)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.SPG_A3_1b = nn.Sequential(nn.Conv2d(768, 1024, 3, padding=1), nn.ReLU(inplace=True))
        self.SPG_A3_2b = nn.Sequential(nn.Conv2d(1024, 1024, 3, padding=1), nn.ReLU(inplace=True))
        # wsolevaluation initialises every layer with Xavier (``initialize_weights(..., 'xavier')``).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        if not self.large_feature_map:
            x = F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True)
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        x = self.SPG_A3_1b(F.dropout(x, self.dropout, self.training))
        x = self.SPG_A3_2b(F.dropout(x, self.dropout, self.training))
        return F.dropout(x, self.dropout, self.training)


def inception_v3(*, large_feature_map: bool = False, dropout: float = 0.5) -> InceptionV3:
    """wsolevaluation's Inception-v3 (stride 16; 8 with ``large_feature_map``)."""
    return InceptionV3(large_feature_map=large_feature_map, dropout=dropout)
