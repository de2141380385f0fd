"""Insertion points: each backbone declares resolvable ones; an inserted layer runs on the point's output."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from wsol.models import BACKBONES, build_backbone
from wsol.models.insertion import InsertedLayer


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_declares_resolvable_points(name: str) -> None:
    with torch.device("meta"):  # no memory, no initialisation cost
        backbone = build_backbone(name)
    assert backbone.insertion_points, f"{name} declares no insertion points"
    for point in backbone.insertion_points:
        backbone.get_submodule(point)


def test_resnet_points_follow_the_depth() -> None:
    with torch.device("meta"):
        assert build_backbone("resnet50").insertion_points == ("layer3.0", "layer4.0", "layer4.2")
        assert build_backbone("resnet18").insertion_points == ("layer3.0", "layer4.0", "layer4.1")
        assert build_backbone("tiny").insertion_points == ("layer3.0", "layer4.0")


class _Scale(InsertedLayer):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.seen: list[Tensor] = []

    def forward(self, features: Tensor) -> Tensor:
        self.seen.append(features.detach().clone())
        return features * self.factor


def test_inserted_layer_transforms_the_point_output_and_keeps_parameter_names() -> None:
    backbone = build_backbone("tiny").eval()
    names = list(backbone.state_dict())
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = backbone(images)
        layer3 = backbone.layer3(
            backbone.layer2(
                backbone.layer1(backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(images)))))
            )
        )
    spy = _Scale(2.0)
    handle = spy.attach(backbone, "layer3.0")
    with torch.no_grad():
        scaled = backbone(images)
        expected = backbone.layer4(2.0 * layer3)
    torch.testing.assert_close(spy.seen[0], layer3)
    torch.testing.assert_close(scaled, expected)
    assert list(backbone.state_dict()) == names
    handle.remove()
    with torch.no_grad():
        torch.testing.assert_close(backbone(images), plain)


def test_undeclared_point_is_rejected() -> None:
    with pytest.raises(ValueError, match="no insertion point 'layer2.0'"):
        _Scale(1.0).attach(build_backbone("tiny"), "layer2.0")
