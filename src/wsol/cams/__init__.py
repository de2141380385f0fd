"""Post-hoc CAM extractors: batched, tensor-native, context-managed, optionally differentiable.

Usage::

    from wsol.cams import build_extractor
    with build_extractor("gradcam", model, "backbone.layer4") as extractor:
        maps = extractor(images, labels, upsample_to="input")   # (B, H, W) in [0, 1]
        logits = extractor.last_logits                           # the classification, for free
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from wsol.cams.ablationcam import AblationCAM
from wsol.cams.base import BaseCAM, CAMContext, LayerSpec, default_output_selector, locate_target_layer
from wsol.cams.cam import CAM
from wsol.cams.gradcam import GradCAM
from wsol.cams.gradcampp import GradCAMPlusPlus
from wsol.cams.iscam import ISCAM
from wsol.cams.layercam import LayerCAM
from wsol.cams.recombined_cam import RecombinedCAM
from wsol.cams.scorecam import ScoreCAM
from wsol.cams.smoothgradcampp import SmoothGradCAMPlusPlus
from wsol.cams.sscam import SSCAM
from wsol.cams.targets import ClassScore, Targets, TargetSpec, resolve_targets
from wsol.cams.xgradcam import XGradCAM

CAM_METHODS: dict[str, type[BaseCAM]] = {
    "cam": CAM,
    "gradcam": GradCAM,
    "gradcampp": GradCAMPlusPlus,
    "smoothgradcampp": SmoothGradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "scorecam": ScoreCAM,
    "sscam": SSCAM,
    "iscam": ISCAM,
    "ablationcam": AblationCAM,
    "recombined_cam": RecombinedCAM,
}


def build_extractor(
    name: str, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, **options: Any
) -> BaseCAM:
    """The extractor ``name`` (a key of :data:`CAM_METHODS`) on ``model``; ``options`` go to its class."""
    try:
        cls = CAM_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown CAM method {name!r}; expected one of {sorted(CAM_METHODS)}") from None
    return cls(model, target_layer, **options)


__all__ = [
    "CAM_METHODS",
    "CAM",
    "AblationCAM",
    "BaseCAM",
    "CAMContext",
    "ClassScore",
    "GradCAM",
    "GradCAMPlusPlus",
    "ISCAM",
    "LayerCAM",
    "RecombinedCAM",
    "SSCAM",
    "ScoreCAM",
    "SmoothGradCAMPlusPlus",
    "TargetSpec",
    "Targets",
    "XGradCAM",
    "build_extractor",
    "default_output_selector",
    "locate_target_layer",
    "resolve_targets",
]
