"""Classic CAM head (Zhou et al., CVPR 2016): global average pooling of the features, then a linear layer.

``s_k = Σ_c w_kc · mean_ij F_c(i, j) + b_k``; the class activation map is Zhou et al.'s
``M_k(i, j) = Σ_c w_kc F_c(i, j)`` (without the bias, a per-class constant), so ``s_k = mean_ij M_k + b_k``.
wsolevaluation's CAM is the same map divided by C (``(W[y] · F).mean(1)``), which min-max normalisation
cancels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wsol.models.heads.base import HeadOutput, PoolingHead


class WGAPHead(PoolingHead):
    """GAP → ``fc`` (named like torchvision's and wsolevaluation's classifier)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: Tensor) -> HeadOutput:
        self.check_features(features)
        logits = self.fc(features.mean(dim=(2, 3)))
        maps = torch.einsum("kc,bchw->bkhw", self.fc.weight, features)
        return HeadOutput(logits, maps)
