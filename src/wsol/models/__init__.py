"""Backbones, pooling heads (the CAM-family baselines) and weight loading; see ``docs/models.md``.

Names are re-exported lazily (``wsol.registry.lazy_exports``): the registries load without torch.
"""

from wsol.registry import lazy_exports

_EXPORTS = {
    "BACKBONES": "wsol.models.backbones",
    "Backbone": "wsol.models.backbones",
    "StagedBackbone": "wsol.models.backbones",
    "build_backbone": "wsol.models.backbones",
    "WSOLClassifier": "wsol.models.classifier",
    "build_classifier": "wsol.models.classifier",
    "select_class_maps": "wsol.models.classifier",
    "HEADS": "wsol.models.heads",
    "HeadOutput": "wsol.models.heads",
    "PoolingHead": "wsol.models.heads",
    "build_head": "wsol.models.heads",
    "LoadReport": "wsol.models.weights",
    "WeightsError": "wsol.models.weights",
    "WeightsUnavailableError": "wsol.models.weights",
    "imagenet_file_name": "wsol.models.weights",
    "load_backbone_weights": "wsol.models.weights",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
