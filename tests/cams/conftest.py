"""Tiny models whose CAMs can be written down by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn


class FixedFeatureHead(nn.Module):
    """logits = W · mean_ij f(A)(i, j) + b with A = ``features(x)`` = x: the input *is* the feature map.

    ``power=1`` is the classic GAP + linear head; ``power=2`` squares the features before pooling so that the
    gradient depends on the input (g_k(i,j) = 2 W[c,k] A_k(i,j) / (h·w)).
    """

    def __init__(self, weight: Tensor, bias: Tensor, power: int = 1) -> None:
        super().__init__()
        self.features = nn.Identity()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0]).to(weight.dtype)
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.copy_(bias)
        self.power = power

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).pow(self.power).mean((2, 3)))


class SmallConvNet(nn.Module):
    """A small non-linear CNN (conv → ReLU → conv → ReLU → GAP → linear) for invariance tests."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1)
        )
        self.act = nn.ReLU()
        self.fc = nn.Linear(8, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.act(self.body(x)).mean((2, 3)))


@pytest.fixture
def fixed_head() -> Callable[..., FixedFeatureHead]:
    def make(channels: int = 4, classes: int = 3, power: int = 1, seed: int = 0) -> FixedFeatureHead:
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(classes, channels, generator=generator, dtype=torch.float64)
        bias = torch.randn(classes, generator=generator, dtype=torch.float64)
        return FixedFeatureHead(weight, bias, power).eval()

    return make


@pytest.fixture
def small_net() -> SmallConvNet:
    torch.manual_seed(0)
    return SmallConvNet().double().eval()
