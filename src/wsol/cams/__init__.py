"""Post-hoc CAM extractors: batched, tensor-native, context-managed, optionally differentiable.

Usage::

    from wsol.cams import build_extractor
    with build_extractor("gradcam", model, "backbone.layer4") as extractor:
        maps = extractor(images, labels, upsample_to="input")   # (B, H, W) in [0, 1]
        logits = extractor.last_logits                           # the classification, for free

``CAM_METHODS`` lists the names without importing torch; classes load on lookup (``wsol.registry``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wsol.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from torch import nn

    from wsol.cams.base import BaseCAM, LayerSpec

CAM_METHODS: Registry[type[BaseCAM]] = Registry(
    "CAM method",
    {
        "cam": "wsol.cams.cam:CAM",
        "gradcam": "wsol.cams.gradcam:GradCAM",
        "gradcampp": "wsol.cams.gradcampp:GradCAMPlusPlus",
        "smoothgradcampp": "wsol.cams.smoothgradcampp:SmoothGradCAMPlusPlus",
        "xgradcam": "wsol.cams.xgradcam:XGradCAM",
        "layercam": "wsol.cams.layercam:LayerCAM",
        "scorecam": "wsol.cams.scorecam:ScoreCAM",
        "sscam": "wsol.cams.sscam:SSCAM",
        "iscam": "wsol.cams.iscam:ISCAM",
        "ablationcam": "wsol.cams.ablationcam:AblationCAM",
        "recombined_cam": "wsol.cams.recombined_cam:RecombinedCAM",
    },
)


def build_extractor(
    name: str, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, **options: Any
) -> BaseCAM:
    """The extractor ``name`` (a key of :data:`CAM_METHODS`) on ``model``; ``options`` go to its class."""
    if name not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {name!r}; expected one of {sorted(CAM_METHODS)}")
    return CAM_METHODS[name](model, target_layer, **options)


_EXPORTS = {
    "AblationCAM": "wsol.cams.ablationcam",
    "BaseCAM": "wsol.cams.base",
    "CAMContext": "wsol.cams.base",
    "LayerSpec": "wsol.cams.base",
    "default_output_selector": "wsol.cams.base",
    "locate_target_layer": "wsol.cams.base",
    "CAM": "wsol.cams.cam",
    "GradCAM": "wsol.cams.gradcam",
    "GradCAMPlusPlus": "wsol.cams.gradcampp",
    "ISCAM": "wsol.cams.iscam",
    "LayerCAM": "wsol.cams.layercam",
    "RecombinedCAM": "wsol.cams.recombined_cam",
    "ScoreCAM": "wsol.cams.scorecam",
    "SmoothGradCAMPlusPlus": "wsol.cams.smoothgradcampp",
    "SSCAM": "wsol.cams.sscam",
    "ClassScore": "wsol.cams.targets",
    "Targets": "wsol.cams.targets",
    "TargetSpec": "wsol.cams.targets",
    "resolve_targets": "wsol.cams.targets",
    "XGradCAM": "wsol.cams.xgradcam",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["CAM_METHODS", "build_extractor", *sorted(_EXPORTS)]
