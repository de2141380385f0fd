"""The pooling-head protocol: features (B, C, h, w) -> class scores (B, K) and per-class maps (B, K, h, w).

Every head exposes its class maps in the forward pass, so a trained model yields a CAM for any class without
hooks, and the maps stay differentiable for training-time losses.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

from torch import Tensor, nn


class HeadOutput(NamedTuple):
    """``logits`` (B, K) and ``class_maps`` (B, K, h, w) at the feature resolution (not normalised)."""

    logits: Tensor
    class_maps: Tensor


class PoolingHead(nn.Module, abc.ABC):
    """Base class of the pooling heads (the CAM-family baselines of arXiv 1907.12934 §4)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        name = type(self).__name__
        if in_channels < 1:
            raise ValueError(f"{name}: in_channels must be >= 1, got {in_channels}")
        if num_classes < 1:
            raise ValueError(f"{name}: num_classes must be >= 1, got {num_classes}")
        self.in_channels = in_channels
        self.num_classes = num_classes

    def check_features(self, features: Tensor) -> None:
        """Raise a ValueError unless ``features`` is (B, in_channels, h, w)."""
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expected features (B, {self.in_channels}, h, w), "
                f"got shape {tuple(features.shape)}"
            )

    @abc.abstractmethod
    def forward(self, features: Tensor) -> HeadOutput:
        """Scores and class maps for ``features`` (B, in_channels, h, w)."""


class ConvPoolingHead(PoolingHead):
    """A 1×1 convolution to ``num_classes × modalities`` maps, then a spatial pooling of each class map.

    Subclasses define :meth:`pool` (B, K, h, w) -> (B, K); with several modalities the maps of a class are
    averaged first (WILDCAT's class-wise pooling, channel ``k·M + m`` = modality m of class k).
    """

    def __init__(self, in_channels: int, num_classes: int, modalities: int = 1) -> None:
        super().__init__(in_channels, num_classes)
        if modalities < 1:
            raise ValueError(f"{type(self).__name__}: modalities must be >= 1, got {modalities}")
        self.modalities = modalities
        self.classifier = nn.Conv2d(in_channels, num_classes * modalities, kernel_size=1)

    def class_maps(self, features: Tensor) -> Tensor:
        """(B, K, h, w): the 1×1 conv output, modality maps of each class averaged."""
        self.check_features(features)
        maps = self.classifier(features)
        if self.modalities > 1:
            batch, _, height, width = maps.shape
            maps = maps.view(batch, self.num_classes, self.modalities, height, width).mean(2)
        return maps

    @abc.abstractmethod
    def pool(self, class_maps: Tensor) -> Tensor:
        """Spatial pooling (B, K, h, w) -> (B, K)."""

    def forward(self, features: Tensor) -> HeadOutput:
        maps = self.class_maps(features)
        return HeadOutput(self.pool(maps), maps)
