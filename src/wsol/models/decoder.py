"""U-Net decoder on any backbone's ``stages(x)`` (shallow-to-deep feature maps).

F-CAM (Belharbi et al., "F-CAM: Full Resolution Class Activation Maps via Guided Parametric Upscaling", WACV
2022, arXiv 2109.07069, §3 and Fig. 2) upsamples the classifier's features with a U-Net decoder: each block
up-samples its input to the next skip's size, concatenates the skip and applies two [Conv3×3 (no bias) → BN →
ReLU]; a last block without skip works at the input resolution and a Conv3×3 head gives two channels
(background, foreground). Block widths default to the paper's ``(…, 256, 128, 64, 32, 16)``.

Nothing here assumes a ResNet: the skips are chosen once, from a dry run of ``stages`` on a small image, as
the deepest stage of each spatial size (a max-pool map and ``layer1`` share H/4: only ``layer1`` is a skip).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.models.backbones.base import StagedBackbone

PROBE_SIZE = 64
"""Side of the dry-run image used to find each stage's channels and scale."""


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """Conv3×3 (padding 1, no bias) → BN → ReLU, as a list of layers."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DecoderBlock(nn.Module):
    """Nearest ×2 up-sampling (then bilinear to the target size if they differ), concat skip, two convs."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_relu(in_channels + skip_channels, out_channels),
            *conv_bn_relu(out_channels, out_channels),
        )

    def forward(self, x: Tensor, size: Sequence[int], skip: Tensor | None = None) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
        return self.body(x if skip is None else torch.cat([x, skip], dim=1))


def select_skips(shapes: Sequence[tuple[int, int, int]]) -> list[int]:
    """Indices (deep to shallow) of the deepest stage of each spatial size, the deepest stage excluded.

    ``shapes`` are (channels, height, width) per stage, shallow to deep.
    """
    deepest_size = shapes[-1][1:]
    chosen: dict[tuple[int, int], int] = {}
    for index, (_, height, width) in enumerate(shapes[:-1]):
        if (height, width) != deepest_size:
            chosen[(height, width)] = index  # later (deeper) stages overwrite shallower ones
    return sorted(chosen.values(), reverse=True)


def default_widths(blocks: int) -> tuple[int, ...]:
    """The paper's widths ending at 16, halving per block: 5 blocks -> (256, 128, 64, 32, 16)."""
    return tuple(16 * 2 ** (blocks - 1 - index) for index in range(blocks))


class UNetDecoder(nn.Module):
    """``features -> (B, out_channels, H, W)`` logits at the input size ``(H, W)``.

    ``shapes``: the backbone's stage shapes (:func:`probe_stages`); ``widths``: one per block (skips + 1).
    """

    def __init__(
        self,
        shapes: Sequence[tuple[int, int, int]],
        widths: Sequence[int] | None = None,
        out_channels: int = 2,
    ) -> None:
        super().__init__()
        if len(shapes) < 1:
            raise ValueError("shapes: the decoder needs at least one encoder stage")
        self.skips = select_skips(shapes)
        widths = tuple(widths) if widths is not None else default_widths(len(self.skips) + 1)
        if len(widths) != len(self.skips) + 1:
            raise ValueError(
                f"widths: expected {len(self.skips) + 1} block widths for this backbone, got {list(widths)}"
            )
        blocks, in_channels = [], shapes[-1][0]
        for width, skip_channels in zip(widths, [shapes[i][0] for i in self.skips] + [0], strict=True):
            blocks.append(DecoderBlock(in_channels, skip_channels, width))
            in_channels = width
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self._initialize()

    def _initialize(self) -> None:
        """Kaiming-uniform convolutions, unit BN, Xavier head (the authors' smp-style initialisation)."""
        for module in self.blocks.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        x = features[-1]
        targets = [features[i] for i in self.skips]
        for block, skip in zip(self.blocks, [*targets, None], strict=True):
            x = block(x, size if skip is None else skip.shape[-2:], skip)
        return self.head(x)


@torch.no_grad()
def probe_stages(backbone: nn.Module, size: int = PROBE_SIZE) -> list[tuple[int, int, int]]:
    """(channels, height, width) of each map of ``backbone.stages`` on a ``size``² image (eval mode)."""
    if not isinstance(backbone, StagedBackbone):
        raise TypeError(
            f"backbone {type(backbone).__name__} has no stages(x): the decoder needs its intermediate maps"
        )
    was_training = backbone.training
    backbone.eval()
    maps = backbone.stages(torch.zeros(1, 3, size, size))
    backbone.train(was_training)
    return [(int(m.shape[1]), int(m.shape[2]), int(m.shape[3])) for m in maps]
