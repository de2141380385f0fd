"""The default policy for datasets whose images differ in size: a fixed evaluation frame.

A batch needs images of one size. When a dataset's images differ in size (read from ``image_sizes.txt``,
nothing decoded) and its transform fixes no size, :func:`resolve_size_policy` resizes every image to a
``frame_size × frame_size`` frame for training and evaluation (as wsolevaluation's 224 × 224 evaluation
frame; the aspect ratio is not kept, boxes and masks follow exactly). When training already uses a fixed
``crop_size``, only evaluation gets the frame (``eval_resize``). The run records the resolved transform in its
config, so that evaluating a checkpoint later uses the same frame. The frame size is ``data.frame_size``
(default 224), chosen per preset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wsol.data.format import read_split
from wsol.data.transforms import TransformConfig


def image_sizes(root: Path, splits: Sequence[str]) -> set[tuple[int, int]]:
    """Distinct ``(width, height)`` of the images of ``splits`` (from the metadata)."""
    return {(record.width, record.height) for split in splits for record in read_split(root, split)}


def resolve_size_policy(
    transforms: Mapping[str, Any], root: Path, splits: Sequence[str], frame_size: int
) -> dict[str, Any]:
    """``transforms`` plus ``frame`` (or ``eval_resize``) when images differ in size and nothing fixes it."""
    config = TransformConfig.from_dict(dict(transforms))
    if config.frame is not None or config.eval_resize is not None or len(image_sizes(root, splits)) <= 1:
        return dict(transforms)
    if config.crop_size is not None:
        return {**transforms, "eval_resize": [frame_size, frame_size]}
    if config.image_size is not None or config.upscale_small_side is not None:
        return {**transforms, "image_size": None, "upscale_small_side": None, "frame": frame_size}
    return {**transforms, "frame": frame_size}
