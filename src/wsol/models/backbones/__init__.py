"""Backbone registry: ``build_backbone(name, *, large_feature_map=False, weights=None, **options)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from wsol.models.backbones.base import Backbone
from wsol.models.backbones.efficientnet_lite import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2
from wsol.models.backbones.inception import inception_v3
from wsol.models.backbones.resnet import ResNet, resnet18, resnet34, resnet50, resnet101
from wsol.models.backbones.tiny import tiny
from wsol.models.backbones.vgg import vgg16

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "vgg16": vgg16,
    "inception_v3": inception_v3,
    "tiny": tiny,
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite1": efficientnet_lite1,
    "efficientnet_lite2": efficientnet_lite2,
}


def build_backbone(
    name: str, *, large_feature_map: bool = False, weights: str | Path | None = None, **options: object
) -> Backbone:
    """Build backbone ``name`` and optionally load ``weights`` (a ``.pth`` path or ``"imagenet"``), strictly.

    ``options`` are the family's extra keywords (ResNets and ``tiny``: ``output_stride``; ``inception_v3``:
    ``dropout``). Weight-loading problems raise; see :func:`wsol.models.weights.load_backbone_weights`.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    factory = BACKBONES[name]
    accepted = set(inspect.signature(factory).parameters) - {"large_feature_map"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"backbone {name!r}: unknown option(s) {unknown}; accepted: {sorted(accepted) or 'none'}"
        )
    backbone = factory(large_feature_map=large_feature_map, **options)
    if weights is not None:
        from wsol.models.weights import load_backbone_weights

        load_backbone_weights(backbone, weights)
    return backbone


__all__ = ["BACKBONES", "Backbone", "ResNet", "build_backbone"]
