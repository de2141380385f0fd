"""Backbone registry: ``build_backbone(name, *, large_feature_map=False, weights=None, **options)``.

``BACKBONES`` lists the names without importing torch; factories load on lookup (``wsol.registry``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from wsol.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from wsol.models.backbones.base import Backbone

BACKBONES: Registry[Callable[..., Backbone]] = Registry(
    "backbone",
    {
        "resnet18": "wsol.models.backbones.resnet:resnet18",
        "resnet34": "wsol.models.backbones.resnet:resnet34",
        "resnet50": "wsol.models.backbones.resnet:resnet50",
        "resnet101": "wsol.models.backbones.resnet:resnet101",
        "vgg16": "wsol.models.backbones.vgg:vgg16",
        "inception_v3": "wsol.models.backbones.inception:inception_v3",
        "tiny": "wsol.models.backbones.tiny:tiny",
        "efficientnet_lite0": "wsol.models.backbones.efficientnet_lite:efficientnet_lite0",
        "efficientnet_lite1": "wsol.models.backbones.efficientnet_lite:efficientnet_lite1",
        "efficientnet_lite2": "wsol.models.backbones.efficientnet_lite:efficientnet_lite2",
    },
)


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


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Backbone": "wsol.models.backbones.base",
        "StagedBackbone": "wsol.models.backbones.base",
        "ResNet": "wsol.models.backbones.resnet",
    },
)
__all__ = ["BACKBONES", "Backbone", "ResNet", "StagedBackbone", "build_backbone"]
