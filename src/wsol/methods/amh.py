"""AMH, attention-based dual hiding (Z. Zhang & T. D. Bui, submitted to ICIP 2021; Z. Zhang, MSc thesis,
Concordia University 2021, ch. 4).

Extends :mod:`wsol.methods.ass`: where the selection strategy hides the most discriminative pixels (its third
category), the hidden region is the union of three parts (§4.2):

* the thresholded drop mask of the self-attention A (Eq. 11; α 0.8 for VGG, 0.9 for ResNet, §4.3.1);
* the *channel* expected region: a spatial softmax per channel (Eq. 13), channel weights by global pooling
  (Eq. 14), the top-1 channel's soft-argmax (expected pixel, Levine et al. 2016) and an ``area`` × ``area``
  window around it ("area hiding", Fig. 20);
* the *spatial* expected region: the same soft-argmax and window on the softmax of A.

Where the thesis is silent or inconsistent we chose: the channel weight is the softmax-weighted average of the
channel's activations, Σ_ij s_cij F_cij (Eq. 14 pools the probability map itself, which sums to 1 for every
channel and would make all weights equal — the same form as the thesis' weighted GAP, Eq. 19); the channel
region is hidden in every channel, like the spatial one (hiding one channel out of hundreds could not raise
the classification error as the ablation, Table 8, reports); ``area`` = 3 feature cells (Fig. 20 gives no
size). The other two categories are ASS's. Identity at evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from wsol.methods.ass import SelectionConfig, select_masks
from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.models.insertion import InsertedLayer, attach_layers


def expected_cell(probabilities: Tensor) -> Tensor:
    """Soft-argmax of spatial distributions (B, h, w): the expected (row, col), rounded, as (B, 2) ints."""
    height, width = probabilities.shape[-2:]
    rows = (probabilities.sum(dim=2) * torch.arange(height, device=probabilities.device)).sum(dim=1)
    cols = (probabilities.sum(dim=1) * torch.arange(width, device=probabilities.device)).sum(dim=1)
    return torch.stack([rows, cols], dim=1).round().long()


def area_mask(centres: Tensor, size: tuple[int, int], area: int) -> Tensor:
    """(B, 1, h, w) masks, 0 in the ``area`` × ``area`` window centred on each (row, col), clipped, else 1."""
    rows = torch.arange(size[0], device=centres.device)[None, :, None]
    cols = torch.arange(size[1], device=centres.device)[None, None, :]
    half = area // 2
    inside_rows = (rows - centres[:, 0, None, None]).abs() <= half
    inside_cols = (cols - centres[:, 1, None, None]).abs() <= half
    return (~(inside_rows & inside_cols)).float()[:, None]


def spatial_softmax(maps: Tensor) -> Tensor:
    """Softmax over the spatial positions of each map (..., h, w)."""
    return maps.flatten(-2).softmax(dim=-1).reshape(maps.shape)


def dual_hiding_mask(features: Tensor, discriminative: float, area: int) -> Tensor:
    """(B, 1, h, w): 0 on the thresholded attention and on the top channel's and the attention's regions."""
    probabilities = spatial_softmax(features)
    weights = (probabilities * features).sum(dim=(2, 3))
    top_channel = probabilities[torch.arange(len(features)), weights.argmax(dim=1)]
    attention = features.mean(dim=1)
    threshold = discriminative * attention.amax(dim=(1, 2), keepdim=True)
    drop = (attention < threshold).float()[:, None]
    size = (features.shape[-2], features.shape[-1])
    channel_region = area_mask(expected_cell(top_channel), size, area)
    spatial_region = area_mask(expected_cell(spatial_softmax(attention)), size, area)
    return drop * channel_region * spatial_region


class DualHiding(InsertedLayer):
    """The AMH layer: ASS's selection, hiding with the dual mask; identity at evaluation."""

    def __init__(self, config: SelectionConfig, area: int) -> None:
        super().__init__()
        if area < 1:
            raise ValueError(f"area: expected a positive window size in feature cells, got {area}")
        self.config = config
        self.area = area

    def forward(self, features: Tensor) -> Tensor:
        if not self.training:
            return features
        hide = dual_hiding_mask(features, self.config.discriminative, self.area)
        return features * select_masks(features, self.config, hide)[0]


class AMH(PoolingHeadMethod):
    """A pooling-head classifier with dual-hiding layers after ``points`` (default: all declared)."""

    def __init__(
        self,
        num_classes: int,
        selection: dict[str, Any] | None = None,
        area: int = 3,
        points: Sequence[str] | None = None,
        **classifier: Any,
    ) -> None:
        super().__init__(num_classes, **classifier)
        config = SelectionConfig(**dict(selection or {}))
        chosen = tuple(points) if points is not None else self.classifier.backbone.insertion_points
        self.hiding_layers = nn.ModuleList(DualHiding(config, area) for _ in chosen)
        attach_layers(self.classifier.backbone, self.hiding_layers, chosen)
