"""ADL, attention-based dropout layer (Choe & Shim, CVPR 2019, arXiv 1908.10028).

A parameter-free layer placed after some backbone blocks (the backbone's ``insertion_points``). In training it
computes the self-attention map A = channel mean of its input, the importance map sigmoid(A) and the drop mask
1[A < γ · max A] (per image), tosses one coin per forward pass and multiplies its input by the drop mask with
probability ``drop_rate``, by the importance map otherwise (paper Fig. 2). At evaluation it is the identity.
Defaults are clovaai/wsolevaluation's: drop rate 0.75, γ 0.9 (``adl_threshold``; the layer's own default is
0.8). The classifier and its map are :class:`~wsol.methods.cam_baseline.PoolingHeadMethod`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.models.insertion import InsertedLayer, attach_layers


def attention_maps(features: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """ADL's ``(drop mask, importance map)``, each (B, 1, h, w), from the channel mean of ``features``."""
    attention = features.mean(dim=1, keepdim=True)
    peak = attention.amax(dim=(2, 3), keepdim=True)
    return (attention < gamma * peak).to(features.dtype), torch.sigmoid(attention)


class AttentionDropout(InsertedLayer):
    """The ADL layer: features × (drop mask with probability ``drop_rate``, else importance map)."""

    def __init__(self, drop_rate: float = 0.75, gamma: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"drop_rate: expected a probability in [0, 1], got {drop_rate}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"threshold: expected γ in [0, 1], got {gamma}")
        self.drop_rate = drop_rate
        self.gamma = gamma

    def forward(self, features: Tensor) -> Tensor:
        if not self.training:
            return features
        drop_mask, importance = attention_maps(features, self.gamma)
        use_drop = float(torch.rand(())) < self.drop_rate
        return features * (drop_mask if use_drop else importance)


class ADL(PoolingHeadMethod):
    """A pooling-head classifier with ADL layers after ``points`` (default: all the backbone declares)."""

    def __init__(
        self,
        num_classes: int,
        drop_rate: float = 0.75,
        threshold: float = 0.9,
        points: Sequence[str] | None = None,
        **classifier: Any,
    ) -> None:
        super().__init__(num_classes, **classifier)
        chosen = tuple(points) if points is not None else self.classifier.backbone.insertion_points
        self.adl_layers = nn.ModuleList(AttentionDropout(drop_rate, threshold) for _ in chosen)
        attach_layers(self.classifier.backbone, self.adl_layers, chosen)
