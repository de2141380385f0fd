"""Backbones, pooling heads (the CAM-family baselines) and weight loading; see ``docs/models.md``."""

from wsol.models.backbones import BACKBONES, Backbone, build_backbone
from wsol.models.classifier import WSOLClassifier, build_classifier, select_class_maps
from wsol.models.heads import HEADS, HeadOutput, PoolingHead, build_head
from wsol.models.weights import (
    LoadReport,
    WeightsError,
    WeightsUnavailableError,
    imagenet_file_name,
    load_backbone_weights,
)

__all__ = [
    "BACKBONES",
    "HEADS",
    "Backbone",
    "HeadOutput",
    "LoadReport",
    "PoolingHead",
    "WSOLClassifier",
    "WeightsError",
    "WeightsUnavailableError",
    "build_backbone",
    "build_classifier",
    "build_head",
    "imagenet_file_name",
    "load_backbone_weights",
    "select_class_maps",
]
