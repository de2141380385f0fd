"""Weighted GAP of Z. Zhang's thesis ("Revisiting Class Activation Map", Concordia University 2021, §5.4.1).

Each channel is pooled with the weights of its own spatial softmax, S_cij = exp(F_cij) / Σ_i'j' exp(F_ci'j')
(Eq. 18, whose printed denominator lacks the exp; a softmax is meant: "a probability distribution"), then
P_c = Σ_ij F_cij S_cij / (w·h) (Eq. 19), and a linear layer gives the class scores. Activated pixels weigh
more than background in the pooled vector, unlike plain GAP. The class map is Zhou et al.'s Σ_c w_kc F_c
(Eq. 16), as in ``wgap`` (which is plain GAP + linear, i.e. classic CAM, not this head).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wsol.models.heads.base import HeadOutput, PoolingHead


class SoftmaxWGAPHead(PoolingHead):
    """Softmax-weighted GAP → ``fc``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: Tensor) -> HeadOutput:
        self.check_features(features)
        weights = features.flatten(2).softmax(dim=2)
        pooled = (features.flatten(2) * weights).sum(dim=2) / features[0, 0].numel()
        maps = torch.einsum("kc,bchw->bkhw", self.fc.weight, features)
        return HeadOutput(self.fc(pooled), maps)
