"""Fully supervised U-Net (Ronneberger et al., MICCAI 2015, arXiv 1505.04597): the pixel-level upper bound.

Unlike every WSOL method it trains on the ground-truth masks: a decoder over the backbone's ``stages()`` (any
backbone that has them) goes from the deepest map back to the shallowest, each block upsampling bilinearly to
the next skip's size, concatenating it and applying [Conv3×3 → BN → ReLU] × 2 (as many channels as the skip),
then a 1×1 convolution gives a foreground logit map, upsampled to the input size. Loss: BCE on the pixels
that have a mask and are not ignored, plus cross-entropy of a GAP head on the deepest map (class scores for
the classification metrics). The localization map is the foreground probability sigmoid(logit) (evaluate
with ``normalize: false``; F1 at 0.5 is then the usual segmentation decision).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod
from wsol.methods.options import require_number
from wsol.models import StagedBackbone, build_backbone, build_head


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv3×3 (padding 1, no bias) → BN → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, two Conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(in_channels + skip_channels, skip_channels),
            conv_bn_relu(skip_channels, skip_channels),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


class UNetFullSup(WSOLMethod):
    """Backbone stages → U-Net decoder → foreground logits; GAP head on the deepest stage for the class."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tiny",
        backbone_options: Mapping[str, Any] | None = None,
        large_feature_map: bool = False,
        weights: str | None = None,
        classification_weight: float = 1.0,
        new_layers_lr_mult: float = 1.0,
    ) -> None:
        super().__init__(num_classes)
        require_number("new_layers_lr_mult", new_layers_lr_mult, low=0.0, open_low=True)
        self.new_layers_lr_mult = new_layers_lr_mult
        self.backbone = build_backbone(
            backbone, large_feature_map=large_feature_map, weights=weights, **dict(backbone_options or {})
        )
        if not isinstance(self.backbone, StagedBackbone):
            raise ValueError(
                f"unet_fullsup: backbone {backbone!r} has no stages(); use one that has (e.g. resnet)"
            )
        channels = self._stage_channels()
        skips = channels[-2::-1]  # deep to shallow; each block outputs its skip's width
        inputs = [channels[-1], *skips[:-1]]
        self.blocks = nn.ModuleList(UpBlock(deep, skip) for deep, skip in zip(inputs, skips, strict=True))
        self.segmentation = nn.Conv2d(channels[0], 1, 1)
        self.head = build_head("gap", channels[-1], num_classes)
        self.classification_weight = classification_weight

    @torch.no_grad()
    def _stage_channels(self) -> list[int]:
        mode = self.backbone.training
        self.backbone.eval()
        stages = self.backbone.stages(
            torch.zeros(1, 3, 128, 128, device=next(self.backbone.parameters()).device)
        )
        self.backbone.train(mode)
        return [stage.shape[1] for stage in stages]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(class logits (B, K), foreground logits (B, H, W) at the input size)``."""
        stages = self.backbone.stages(images)
        x = stages[-1]
        for block, skip in zip(self.blocks, stages[-2::-1], strict=True):
            x = block(x, skip)
        logits = F.interpolate(
            self.segmentation(x), size=images.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.head(stages[-1]).logits, logits[:, 0]

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """The backbone at ``lr`` (its own new layers, if any, with the decoder and the heads at
        ``lr × new_layers_lr_mult``), as the pretrained presets of the WSOL methods do."""
        new_layers = [*self.blocks.parameters(), *self.segmentation.parameters(), *self.head.parameters()]
        return self.backbone.parameter_groups(lr, self.new_layers_lr_mult, new_layers)

    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        logits, foreground = self(images)
        return Prediction(logits=logits, maps=torch.sigmoid(foreground))

    def training_loss(self, batch: Batch) -> LossOutput:
        logits, foreground = self(batch["image"])
        valid = ~batch["ignore"][:, 0] & batch["has_mask"][:, None, None]
        target = batch["mask"][:, 0]
        bce = (
            F.binary_cross_entropy_with_logits(foreground[valid], target[valid])
            if valid.any()
            else foreground.sum() * 0
        )
        ce = F.cross_entropy(logits, batch["label"])
        total = bce + self.classification_weight * ce
        return LossOutput(total=total, terms={"bce": bce.detach(), "ce": ce.detach()})
