"""Deep MIL attention pooling (Ilse, Tomczak & Welling, ICML 2018), one attention map per class.

Each location p of the feature map is an instance h_p. Per class c (the multi-class WSOL adaptation of the
min-max paper's baseline, Belharbi et al. arXiv 1907.12934 §4):

    a_{c,p} = softmax_p( w_cᵀ tanh(V h_p) )                       (attention-based MIL pooling)
    a_{c,p} = softmax_p( w_cᵀ (tanh(V h_p) ⊙ sigm(U h_p)) )        gated attention
    z_c = Σ_p a_{c,p} h_p,      s_c = θ_cᵀ z_c + b_c               (one linear classifier per class)

The class maps are the attention weights a (each sums to 1 over the map).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from wsol.models.heads.base import HeadOutput, PoolingHead


class MILHead(PoolingHead):
    """Attention-based MIL pooling; ``mid_channels`` is Ilse et al.'s L (128); ``gated``: gated attention."""

    def __init__(
        self, in_channels: int, num_classes: int, mid_channels: int = 128, gated: bool = False
    ) -> None:
        super().__init__(in_channels, num_classes)
        if mid_channels < 1:
            raise ValueError(f"MILHead: mid_channels must be >= 1, got {mid_channels}")
        self.gated = gated
        self.attention_v = nn.Conv2d(in_channels, mid_channels, kernel_size=1)
        self.attention_u = nn.Conv2d(in_channels, mid_channels, kernel_size=1) if gated else None
        self.attention_w = nn.Conv2d(mid_channels, num_classes, kernel_size=1)
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
        self.bias = nn.Parameter(torch.empty(num_classes))
        bound = 1.0 / math.sqrt(in_channels)  # nn.Linear's default initialisation
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def attention(self, features: Tensor) -> Tensor:
        """Attention maps (B, K, h, w), each summing to 1 over its h·w locations."""
        self.check_features(features)
        hidden = torch.tanh(self.attention_v(features))
        if self.attention_u is not None:
            hidden = hidden * torch.sigmoid(self.attention_u(features))
        scores = self.attention_w(hidden)
        return scores.flatten(2).softmax(dim=2).view_as(scores)

    def forward(self, features: Tensor) -> HeadOutput:
        attention = self.attention(features)
        bags = torch.einsum("bkn,bcn->bkc", attention.flatten(2), features.flatten(2))
        logits = (bags * self.weight).sum(dim=2) + self.bias
        return HeadOutput(logits, attention)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, gated={self.gated}"
