"""SPG, self-produced guidance (Zhang et al., ECCV 2018, arXiv 1807.08902).

Besides the classifier (backbone + pooling head, trained with CE), three auxiliary branches predict a
foreground logit map: B1 and B2 on two intermediate feature maps (``tap_points``, by default the backbone's
first two insertion points; the reference taps VGG's conv4/conv5 and ResNet's first block / end of layer3),
each through its own Conv3×3 → ReLU followed by a *shared* Conv3×3 → ReLU → Conv1×1(→ 1), and C on the final
features (Conv3×3 → ReLU → Conv1×1). Each branch is trained with BCE against a ternary mask of a "guidance"
map (1 where the map > h, or ≥ 0.7·max when fewer than 30 pixels pass; 0 where it is < l, which wins on
overlap; other pixels ignored), all maps upsampled bilinearly to the input size. Guidance and (h, l), from
clovaai/wsolevaluation: B2 ← the min-max normalised class map of the label (0.7, 0.01); B1 ← sigmoid(B2)
(0.5, 0.05); C ← the mean of sigmoid(B1) and sigmoid(B2) (0.7, 0.1); guidance maps are detached. The
localization map is the classifier's class map (as :class:`~wsol.methods.cam_baseline.PoolingHeadMethod`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Batch, LossOutput
from wsol.methods.cam_baseline import PoolingHeadMethod, minmax_normalize
from wsol.models import select_class_maps
from wsol.models.insertion import InsertedLayer, attach_layers

MIN_POSITIVES = 30
FALLBACK_RATIO = 0.7


@dataclass(frozen=True)
class TernaryMask:
    """BCE target (1 foreground, 0 background) and where it is defined (False = ignored pixel)."""

    target: Tensor
    valid: Tensor


def ternary_mask(maps: Tensor, high: float, low: float) -> TernaryMask:
    """SPG's mask of ``maps`` (B, H, W): 1 above ``high`` (or 0.7·max), 0 below ``low``, else ignored."""
    flat = maps.flatten(1)
    positive = flat > high
    few = positive.sum(dim=1, keepdim=True) < MIN_POSITIVES
    positive = torch.where(few, flat > FALLBACK_RATIO * flat.amax(dim=1, keepdim=True), positive)
    negative = flat < low
    target = (positive & ~negative).to(maps.dtype).reshape(maps.shape)
    return TernaryMask(target, (positive | negative).reshape(maps.shape))


def masked_bce(logits: Tensor, mask: TernaryMask) -> Tensor:
    """Mean BCE-with-logits over the defined pixels (0 when there are none)."""
    if not bool(mask.valid.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[mask.valid], mask.target[mask.valid])


class FeatureTap(InsertedLayer):
    """In training, keeps the last output of its insertion point (for the branches); returns it unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.output: Tensor | None = None

    def forward(self, features: Tensor) -> Tensor:
        if self.training:
            self.output = features
        return features

    def take(self) -> Tensor:
        """The stored map, forgotten afterwards (no reference outlives the step)."""
        output, self.output = self.output, None
        if output is None:
            raise RuntimeError("FeatureTap: the backbone has not run since the last take()")
        return output


def conv_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv3×3 (padding 1) → ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class SPG(PoolingHeadMethod):
    """Pooling-head classifier + SPG's three self-guided foreground branches."""

    thresholds = {"b2": (0.7, 0.01), "b1": (0.5, 0.05), "c": (0.7, 0.1)}

    def __init__(
        self,
        num_classes: int,
        branch_width: int = 512,
        tap_points: Sequence[str] | None = None,
        **classifier: Any,
    ) -> None:
        super().__init__(num_classes, **classifier)
        backbone = self.classifier.backbone
        points = tuple(tap_points) if tap_points is not None else backbone.insertion_points[:2]
        if len(points) != 2:
            raise ValueError(
                f"tap_points: expected two insertion points of {backbone.name}, got {list(points)}"
            )
        self.taps = nn.ModuleList(FeatureTap() for _ in points)
        attach_layers(backbone, self.taps, points)
        channels = self._tap_channels()
        self.pre_b1 = conv_relu(channels[0], branch_width)
        self.pre_b2 = conv_relu(channels[1], branch_width)
        self.shared_b = nn.Sequential(conv_relu(branch_width, branch_width), nn.Conv2d(branch_width, 1, 1))
        self.branch_c = nn.Sequential(
            conv_relu(backbone.out_channels, branch_width), nn.Conv2d(branch_width, 1, 1)
        )

    @torch.no_grad()
    def _tap_channels(self) -> list[int]:
        backbone = self.classifier.backbone
        mode = backbone.training
        backbone.eval()
        backbone(torch.zeros(1, 3, 128, 128, device=next(backbone.parameters()).device))
        backbone.train(mode)
        return [tap.take().shape[1] for tap in self.taps]

    def training_loss(self, batch: Batch) -> LossOutput:
        images, labels = batch["image"], batch["label"]
        features = self.classifier.backbone(images)
        tap1, tap2 = (tap.take() for tap in self.taps)
        output = self.classifier.head(features)
        size = images.shape[-2:]

        def up(logit_map: Tensor) -> Tensor:
            return F.interpolate(logit_map, size=size, mode="bilinear", align_corners=False)[:, 0]

        b1, b2 = up(self.shared_b(self.pre_b1(tap1))), up(self.shared_b(self.pre_b2(tap2)))
        c = up(self.branch_c(features))
        attention = minmax_normalize(up(select_class_maps(output.class_maps, labels)[:, None]).detach())
        sig_b1, sig_b2 = torch.sigmoid(b1).detach(), torch.sigmoid(b2).detach()
        terms = {
            "ce": F.cross_entropy(output.logits, labels),
            "bce_b2": masked_bce(b2, ternary_mask(attention, *self.thresholds["b2"])),
            "bce_b1": masked_bce(b1, ternary_mask(sig_b2, *self.thresholds["b1"])),
            "bce_c": masked_bce(c, ternary_mask((sig_b1 + sig_b2) / 2, *self.thresholds["c"])),
        }
        total = sum(terms.values(), torch.zeros((), device=images.device))
        return LossOutput(total=total, terms={name: value.detach() for name, value in terms.items()})

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        groups = super().parameter_groups(lr)
        branches = [*self.pre_b1.parameters(), *self.pre_b2.parameters(), *self.shared_b.parameters()]
        groups[-1]["params"] = [*groups[-1]["params"], *branches, *self.branch_c.parameters()]
        return groups
