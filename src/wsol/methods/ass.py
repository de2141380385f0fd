"""ASS, attention-based selection strategy (Z. Zhang & T. D. Bui, ICPR 2020; Z. Zhang, MSc thesis, Concordia
University 2021, ch. 3).

A parameter-free layer at the backbone's insertion points (the thesis plugs it after VGG's pool3, pool4 and
conv5-3; ADL's places). In training it computes the self-attention A = channel mean (Eq. 10) and, per image,
picks one of three spatial masks (Algorithm 1) that multiply the features:

1. the most activated pixels (A ≥ α·max, α 0.8) are many (≥ ``min_points``) and scattered (dispersion
   D = μ1(Var X + Var Y) + μ2·P ≥ 40, Eq. 12): hide them *and* the background (A < β·max, β 0.2);
2. the estimated target (A ≥ 0.3·max) covers < 20 % of the map, or the most activated pixels are > 30 % of
   it: keep everything (all-ones mask);
3. otherwise hide the most activated pixels (the drop mask of Eq. 11).

Constants are §3.3.1's. Where the thesis is silent we chose: μ1 = 1, μ2 = 0 (no values given); P counts the
isolated activated pixels (no 8-neighbour); ``min_points`` = 4; X, Y are measured on a 28 × 28 grid spanning
the map (the thesis' threshold 40 is in pixels of its 28 × 28 pool3 map at 224 px; rescaling keeps the rule's
meaning at other input sizes); β = 0.2 as §3.3.1 (§3.2's text says 0.1). At evaluation the layer is the
identity. The classifier and its map are :class:`~wsol.methods.cam_baseline.PoolingHeadMethod`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.models.insertion import InsertedLayer, attach_layers

SCATTERED, SMALL_OR_COVERED, HIDE = 0, 1, 2
"""The three categories of Algorithm 1, in the order they are tested."""


@dataclass(frozen=True)
class SelectionConfig:
    """Thresholds of the selection strategy (thesis §3.3.1 unless marked ours in the module docstring)."""

    discriminative: float = 0.8
    target: float = 0.3
    background: float = 0.2
    small_area: float = 0.2
    drop_proportion: float = 0.3
    dispersion: float = 40.0
    mu1: float = 1.0
    mu2: float = 0.0
    min_points: int = 4
    grid: int = 28

    def __post_init__(self) -> None:
        for name in ("discriminative", "target", "background", "small_area", "drop_proportion"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a fraction in [0, 1], got {getattr(self, name)}")


def dispersion(points: Tensor, config: SelectionConfig) -> Tensor:
    """Eq. 12 for boolean maps (B, h, w): μ1 (Var X + Var Y) on the ``grid`` scale + μ2 · isolated pixels."""
    _, height, width = points.shape
    weights = points.flatten(1).float()
    count = weights.sum(dim=1).clamp(min=1.0)
    rows, cols = torch.meshgrid(
        torch.arange(height, device=points.device) * (config.grid / height),
        torch.arange(width, device=points.device) * (config.grid / width),
        indexing="ij",
    )
    variance = torch.zeros_like(count)
    for axis in (rows.flatten(), cols.flatten()):
        mean = (weights * axis).sum(dim=1) / count
        variance = variance + (weights * (axis - mean[:, None]) ** 2).sum(dim=1) / count
    neighbours = F.conv2d(points[:, None].float(), torch.ones(1, 1, 3, 3, device=points.device), padding=1)[
        :, 0
    ]
    isolated = (points & (neighbours == 1)).flatten(1).sum(dim=1)
    return config.mu1 * variance + config.mu2 * isolated


def select_masks(
    features: Tensor, config: SelectionConfig, hide: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(masks (B, 1, h, w), categories (B,))`` of Algorithm 1 for ``features`` (B, C, h, w).

    ``hide`` (B, 1, h, w) replaces the drop mask of category 3 (dual hiding passes its own).
    """
    attention = features.mean(dim=1)
    peak = attention.amax(dim=(1, 2), keepdim=True)
    top = attention >= config.discriminative * peak
    drop1 = (~top).to(features.dtype)[:, None]
    drop2 = (attention >= config.background * peak).to(features.dtype)[:, None]
    area = attention[0].numel()
    top_count = top.flatten(1).sum(dim=1).float()
    target_count = (attention >= config.target * peak).flatten(1).sum(dim=1).float().clamp(min=1.0)
    scattered = (top_count >= config.min_points) & (dispersion(top, config) >= config.dispersion)
    keep = (target_count / area < config.small_area) | (top_count / target_count > config.drop_proportion)
    categories = torch.where(scattered, SCATTERED, torch.where(keep, SMALL_OR_COVERED, HIDE))
    choices = torch.stack([drop1 * drop2, torch.ones_like(drop1), drop1 if hide is None else hide])
    return choices[categories, torch.arange(len(categories))], categories


class AttentionSelection(InsertedLayer):
    """The ASS layer: features × the mask Algorithm 1 selects per image; identity at evaluation."""

    def __init__(self, config: SelectionConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, features: Tensor) -> Tensor:
        if not self.training:
            return features
        return features * select_masks(features, self.config)[0]


class ASS(PoolingHeadMethod):
    """A pooling-head classifier with ASS layers after ``points`` (default: all the backbone declares)."""

    def __init__(
        self,
        num_classes: int,
        selection: dict[str, Any] | None = None,
        points: Sequence[str] | None = None,
        **classifier: Any,
    ) -> None:
        super().__init__(num_classes, **classifier)
        config = SelectionConfig(**dict(selection or {}))
        chosen = tuple(points) if points is not None else self.classifier.backbone.insertion_points
        self.selection_layers = nn.ModuleList(AttentionSelection(config) for _ in chosen)
        attach_layers(self.classifier.backbone, self.selection_layers, chosen)
