"""ACoL, adversarial complementary learning (Zhang et al., CVPR 2018, arXiv 1804.06962).

Two classifier heads share the backbone features F. Head A's class map for the label (ground truth in
training, A's prediction otherwise) is min-max normalised per image and detached; where it reaches
``threshold`` (δ, 0.7 as in the paper and clovaai/wsolevaluation) are erased from F (set to 0), and head B
classifies the erased features, so it must find complementary object parts. Loss: CE(A) + CE(B). The
localization map is the element-wise max of the two normalised class maps (paper Eq. 3, "fused"). Each head is
Conv3×3(C → width) → ReLU → Conv3×3(width → width) → ReLU → Conv1×1(width → K), then global average pooling
(the reference width is 1024). The reference VGG variant's extra 3×3 average pooling of F is not reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod
from wsol.methods.cam_baseline import minmax_normalize
from wsol.models import build_backbone, select_class_maps


def acol_head(in_channels: int, width: int, num_classes: int) -> nn.Sequential:
    """The reference ACoL classifier: two 3×3 conv + ReLU, then a 1×1 conv to class maps."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, num_classes, 1),
    )


def erase_discriminative(features: Tensor, class_maps: Tensor, classes: Tensor, threshold: float) -> Tensor:
    """``features`` zeroed where the normalised, detached map of ``classes`` is ≥ ``threshold``."""
    attention = minmax_normalize(select_class_maps(class_maps.detach(), classes))
    return features * (attention < threshold).to(features.dtype)[:, None]


class ACoL(WSOLMethod):
    """Backbone + two adversarial complementary heads."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tiny",
        threshold: float = 0.7,
        head_width: int = 1024,
        backbone_options: Mapping[str, Any] | None = None,
        large_feature_map: bool = False,
        weights: str | None = None,
        new_layers_lr_mult: float = 1.0,
    ) -> None:
        super().__init__(num_classes)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold: expected a value in (0, 1], got {threshold}")
        if new_layers_lr_mult <= 0:
            raise ValueError(f"new_layers_lr_mult: expected a positive number, got {new_layers_lr_mult}")
        self.backbone = build_backbone(
            backbone, large_feature_map=large_feature_map, weights=weights, **dict(backbone_options or {})
        )
        self.head_a = acol_head(self.backbone.out_channels, head_width, num_classes)
        self.head_b = acol_head(self.backbone.out_channels, head_width, num_classes)
        self.threshold = threshold
        self.new_layers_lr_mult = new_layers_lr_mult

    def forward(self, images: Tensor, classes: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(logits_a, maps_a, logits_b, maps_b)``; B sees F erased where A's map of ``classes`` is high."""
        features = self.backbone(images)
        maps_a = self.head_a(features)
        logits_a = maps_a.mean(dim=(2, 3))
        chosen = logits_a.argmax(dim=1) if classes is None else classes
        maps_b = self.head_b(erase_discriminative(features, maps_a, chosen, self.threshold))
        return logits_a, maps_a, maps_b.mean(dim=(2, 3)), maps_b

    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        logits, maps_a, _, maps_b = self(images, classes)
        chosen = logits.argmax(dim=1) if classes is None else classes.to(logits.device)
        fused = torch.maximum(
            minmax_normalize(select_class_maps(maps_a, chosen)),
            minmax_normalize(select_class_maps(maps_b, chosen)),
        )
        maps = F.interpolate(fused[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)
        return Prediction(logits=logits, maps=minmax_normalize(maps[:, 0]))

    def training_loss(self, batch: Batch) -> LossOutput:
        labels = batch["label"]
        logits_a, _, logits_b, _ = self(batch["image"], labels)
        ce_a, ce_b = F.cross_entropy(logits_a, labels), F.cross_entropy(logits_b, labels)
        return LossOutput(total=ce_a + ce_b, terms={"ce_a": ce_a.detach(), "ce_b": ce_b.detach()})

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        heads = [*self.head_a.parameters(), *self.head_b.parameters()]
        return self.backbone.parameter_groups(lr, self.new_layers_lr_mult, heads)
