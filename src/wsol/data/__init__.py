"""Datasets: the on-disk format, the ``WSOLDataset``, joint transforms, splits and the synthetic benchmark."""

from wsol.data.dataset import WSOLDataset, boxes_from_mask, collate
from wsol.data.format import (
    DatasetFormatError,
    DatasetInfo,
    ImageRecord,
    read_dataset_info,
    read_split,
    write_dataset,
)
from wsol.data.splits import apply_split, fullsup_split, stratified_split
from wsol.data.synth import SynthConfig, ensure_synthetic, generate_synthetic, read_parts
from wsol.data.transforms import PRESETS as TRANSFORM_PRESETS
from wsol.data.transforms import JointTransform, TransformConfig, build_transforms, denormalize

__all__ = [
    "TRANSFORM_PRESETS",
    "DatasetFormatError",
    "DatasetInfo",
    "ImageRecord",
    "JointTransform",
    "SynthConfig",
    "TransformConfig",
    "WSOLDataset",
    "apply_split",
    "boxes_from_mask",
    "build_transforms",
    "collate",
    "denormalize",
    "ensure_synthetic",
    "fullsup_split",
    "generate_synthetic",
    "read_dataset_info",
    "read_parts",
    "read_split",
    "stratified_split",
    "write_dataset",
]
