"""Datasets: the on-disk format, the ``WSOLDataset``, joint transforms, splits and the synthetic benchmark.

Names are re-exported lazily (``wsol.registry.lazy_exports``): ``wsol.data.format`` and the importers load
without torch.
"""

from wsol.registry import lazy_exports

_EXPORTS = {
    "WSOLDataset": "wsol.data.dataset",
    "boxes_from_mask": "wsol.data.dataset",
    "collate": "wsol.data.dataset",
    "DatasetFormatError": "wsol.data.format",
    "DatasetInfo": "wsol.data.format",
    "ImageRecord": "wsol.data.format",
    "read_dataset_info": "wsol.data.format",
    "read_split": "wsol.data.format",
    "write_dataset": "wsol.data.format",
    "apply_split": "wsol.data.splits",
    "fullsup_split": "wsol.data.splits",
    "stratified_split": "wsol.data.splits",
    "SynthConfig": "wsol.data.synth",
    "ensure_synthetic": "wsol.data.synth",
    "generate_synthetic": "wsol.data.synth",
    "read_parts": "wsol.data.synth",
    "TRANSFORM_PRESETS": "wsol.data.transforms:PRESETS",
    "JointTransform": "wsol.data.transforms",
    "TransformConfig": "wsol.data.transforms",
    "build_transforms": "wsol.data.transforms",
    "denormalize": "wsol.data.transforms",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
