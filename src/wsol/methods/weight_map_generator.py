"""The weight-map generator g of Shaharabany & Wolf, "Learning a Weight Map for WSOL" (arXiv 2111.14131).

g = a ResNet encoder (the paper's "Architecture") + a skip decoder of five up-sampling blocks whose output is
a sigmoid map at input resolution. The block layout follows the authors' public scaffolding
(talshaharabany/what-is-where-by-looking): a bottleneck of two Conv3x3-BN-ReLU on the deepest map, then one
``SkipUpBlock`` per shallower encoder map, each ``[up-sample] -> concat(skip) -> Conv3x3 -> BN -> ReLU ->
Conv3x3 [-> BN -> ReLU]``, the last one returning a 1-channel logit that is resized (bilinear,
``align_corners=True``) to the input size.

The decoder only assumes an encoder with ``stages(x) -> list[Tensor]`` (shallow to deep) and
``stage_channels``; a block up-samples to its skip's size whenever the sizes differ, which reproduces the
ResNet layout (no up-sampling between the max-pool map and ``layer1``, both at H/4) and adapts to other
encoders (``tiny``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.models import build_backbone


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SkipUpBlock(nn.Module):
    """Resize to the skip's size, concatenate it, two 3x3 convolutions (the authors' ``SkipUpBlock``).

    ``final=True`` is the last block: its second convolution's raw output is returned (a logit, no BN/ReLU).
    """

    def __init__(
        self, in_channels: int, skip_channels: int, out_channels: int, *, final: bool = False
    ) -> None:
        super().__init__()
        layers = [
            *_conv_bn_relu(in_channels + skip_channels, out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        ]
        if not final:
            layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], dim=1))


class SkipDecoder(nn.Module):
    """Bottleneck on the deepest map, then one :class:`SkipUpBlock` per shallower map; returns a logit map."""

    def __init__(self, stage_channels: Sequence[int]) -> None:
        super().__init__()
        channels = [int(c) for c in stage_channels]
        if len(channels) < 2:
            raise ValueError(f"stage_channels: the decoder needs at least 2 encoder stages, got {channels}")
        deepest = channels[-1]
        self.bottleneck = nn.Sequential(*_conv_bn_relu(deepest, deepest), *_conv_bn_relu(deepest, deepest))
        blocks = []
        in_channels = deepest
        skips = channels[-2::-1]
        for index, skip_channels in enumerate(skips):
            final = index == len(skips) - 1
            out_channels = 1 if final else skip_channels
            blocks.append(SkipUpBlock(in_channels, skip_channels, out_channels, final=final))
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.bottleneck(features[-1])
        for block, skip in zip(self.blocks, reversed(features[:-1]), strict=True):
            x = block(x, skip)
        return x


class WeightMapGenerator(nn.Module):
    """g: image (B,3,H,W) -> weight map M (B,H,W) in (0,1) (the paper's "Architecture", Eq. 1's g(I))."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        if not hasattr(encoder, "stages") or not hasattr(encoder, "stage_channels"):
            raise TypeError(
                f"encoder: expected a backbone with `stages(x)` and `stage_channels` (a wsol.models "
                f"ResNet or `tiny`), got {type(encoder).__name__}"
            )
        self.encoder = encoder
        self.decoder = SkipDecoder(encoder.stage_channels)

    def logits(self, images: Tensor) -> Tensor:
        """Pre-sigmoid map (B,1,H,W) at the input resolution."""
        features = self.encoder.stages(images)
        if len(features) != len(self.decoder.blocks) + 1:
            raise ValueError(
                f"encoder.stages returned {len(features)} maps but stage_channels lists "
                f"{len(self.decoder.blocks) + 1}"
            )
        logit = self.decoder(features)
        return F.interpolate(logit, size=images.shape[-2:], mode="bilinear", align_corners=True)

    def forward(self, images: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(images)).squeeze(1)


def build_generator(encoder: str = "resnet18", *, weights: str | None = None) -> WeightMapGenerator:
    """A generator on ``wsol.models.build_backbone(encoder, weights=weights)`` (the paper uses ImageNet
    weights).
    """
    return WeightMapGenerator(build_backbone(encoder, weights=weights))
