"""``WSOLClassifier``: a backbone and a pooling head, i.e. the CAM-family baselines as one module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wsol.models.backbones import build_backbone
from wsol.models.backbones.base import Backbone
from wsol.models.heads import build_head
from wsol.models.heads.base import HeadOutput, PoolingHead


class WSOLClassifier(nn.Module):
    """``head(backbone(x))``, with :meth:`cam` for any class and wsolevaluation's :meth:`parameter_groups`."""

    def __init__(self, backbone: Backbone, head: PoolingHead) -> None:
        super().__init__()
        if head.in_channels != backbone.out_channels:
            raise ValueError(
                f"head expects {head.in_channels} input channels but backbone {backbone.name} gives "
                f"{backbone.out_channels}"
            )
        self.backbone = backbone
        self.head = head

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def forward(self, x: Tensor) -> HeadOutput:
        return self.head(self.backbone(x))

    def cam(self, x: Tensor, classes: Tensor | Sequence[int]) -> Tensor:
        """Class maps (B, h, w) of ``classes`` (one per image) at the feature resolution, differentiable."""
        class_maps = self(x).class_maps
        return select_class_maps(class_maps, classes)

    def parameter_groups(self, lr: float, new_layers_lr_mult: float = 10.0) -> list[dict[str, Any]]:
        """Optimiser groups per wsolevaluation: pretrained layers at ``lr``, new layers and head at ``lr ×
        mult``.

        For ResNets ``layer4`` is in the boosted group too (wsolevaluation's ``lr_classifier_ratio``). Empty
        groups are left out.
        """
        return self.backbone.parameter_groups(lr, new_layers_lr_mult, self.head.parameters())


def select_class_maps(class_maps: Tensor, classes: Tensor | Sequence[int]) -> Tensor:
    """``class_maps[b, classes[b]]`` -> (B, h, w), checking one in-range class per image."""
    classes = torch.as_tensor(classes, device=class_maps.device)
    batch, num_classes = class_maps.shape[:2]
    if classes.shape != (batch,) or classes.is_floating_point():
        raise ValueError(f"classes: expected {batch} integer class indices, got shape {tuple(classes.shape)}")
    if batch and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
        raise ValueError(f"classes: indices must be in [0, {num_classes}), got {classes.tolist()}")
    return class_maps[torch.arange(batch, device=class_maps.device), classes]


def build_classifier(
    backbone: str,
    head: str,
    num_classes: int,
    *,
    large_feature_map: bool = False,
    weights: str | Path | None = None,
    backbone_options: dict[str, Any] | None = None,
    head_options: dict[str, Any] | None = None,
) -> WSOLClassifier:
    """``WSOLClassifier(build_backbone(...), build_head(...))`` from names."""
    net = build_backbone(
        backbone, large_feature_map=large_feature_map, weights=weights, **(backbone_options or {})
    )
    return WSOLClassifier(net, build_head(head, net.out_channels, num_classes, **(head_options or {})))
