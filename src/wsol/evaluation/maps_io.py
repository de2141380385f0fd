"""Score maps on disk in the wsolevaluation layout, and their ground truth, for ``wsol evaluate --maps``.

Maps: ``<maps_dir>/<image_id>.npy`` (what wsolevaluation's loader reads, e.g. ``123/456.JPEG.npy``) or
``<maps_dir>/<image_id without extension>.npy`` (what its README describes): one 2-D float array per image.
Ground truth comes from a dataset of ours (``dataset.json``) or from a raw wsolevaluation metadata split
folder (``image_ids.txt``, ``class_labels.txt``, ``image_sizes.txt``, ``localization.txt``), both read through
``wsol.data.format``. Boxes are in original image pixels and are mapped into the map's frame here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsol.data.format import DATASET_FILE, ImageRecord, read_dataset_info, read_split, read_split_metadata
from wsol.evaluation import parity as ref


@dataclass(frozen=True)
class GroundTruth:
    """The records of one split and where their masks live."""

    records: list[ImageRecord]
    mask_root: Path | None


@dataclass(frozen=True)
class MapSample:
    """One score map with its ground truth in the map's frame."""

    image_id: str
    path: Path  # the .npy file of the map
    scoremap: np.ndarray
    label: int
    boxes: np.ndarray  # (N, 4) float64 in map pixels
    mask: np.ndarray | None  # (H, W) bool foreground
    ignore: np.ndarray | None  # (H, W) bool ignored background


def load_ground_truth(data: Path, split: str | None, mask_root: Path | None = None) -> GroundTruth:
    """Records of ``split`` of the dataset at ``data``, or of the raw metadata split folder ``data``."""
    data = Path(data)
    if (data / "image_ids.txt").is_file():
        return GroundTruth(read_split_metadata(data), Path(mask_root) if mask_root else None)
    if (data / DATASET_FILE).is_file():
        if not split:
            raise ValueError(
                f"--split: required for the dataset {data} (it has {read_dataset_info(data).splits})"
            )
        info = read_dataset_info(data)
        root = Path(mask_root) if mask_root else info.resolve_mask_root(data)
        return GroundTruth(read_split(data, split), root)
    raise FileNotFoundError(
        f"--data {data}: expected a dataset folder with {DATASET_FILE} "
        "or a metadata split folder with image_ids.txt"
    )


def scoremap_path(maps_dir: Path, image_id: str) -> Path:
    """The ``.npy`` file of ``image_id``: ``<id>.npy`` if present, else ``<id without extension>.npy``."""
    direct = Path(maps_dir) / f"{image_id}.npy"
    if direct.is_file():
        return direct
    stem = Path(maps_dir) / Path(image_id).with_suffix(".npy")
    if stem.is_file():
        return stem
    raise FileNotFoundError(f"no score map for image {image_id!r}: looked for {direct} and {stem}")


def load_scoremap(path: Path) -> np.ndarray:
    """A 2-D float map from a ``.npy`` file (no pickles)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{path}: expected a 2-D float score map, got {array.dtype} array of shape {array.shape}"
        )
    if np.isinf(array).any():
        raise ValueError(f"{path}: score map holds {int(np.isinf(array).sum())} infinite value(s)")
    return array


def _load_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """wsolevaluation's ``load_mask_image``: grey PNG, float32, nearest resize to (width, height), ``>
    0.5``."""
    # ANYDEPTH keeps 16-bit and float masks as stored (GRAYSCALE alone would scale ids 1..255 of a 16-bit
    # instance mask down to 0); 8-bit masks read exactly as in wsolevaluation.
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise FileNotFoundError(f"{path}: mask image not found or unreadable")
    return cv2.resize(np.float32(image), size, interpolation=cv2.INTER_NEAREST) > 0.5


def map_boxes(record: ImageRecord, map_size: tuple[int, int], truncate: bool) -> np.ndarray:
    """GT boxes from original pixels to the map's (height, width) frame; ``truncate`` as ``resize_bbox``."""
    height, width = map_size
    if truncate:
        boxes = [ref.resize_box(box, (record.width, record.height), (width, height)) for box in record.boxes]
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = np.array([width / record.width, height / record.height] * 2)
    return np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4) * scale


def iterate_samples(maps_dir: Path, truth: GroundTruth, truncate_boxes: bool) -> Iterator[MapSample]:
    """Maps and ground truth of every record, in split order."""
    for record in truth.records:
        path = scoremap_path(maps_dir, record.image_id)
        scoremap = load_scoremap(path)
        height, width = scoremap.shape
        mask = ignore = None
        if record.has_mask:
            if truth.mask_root is None:
                raise ValueError(f"--mask-root: required, image {record.image_id!r} has masks")
            mask = np.zeros((height, width), dtype=bool)
            for relative in record.mask_paths:
                mask |= _load_mask(truth.mask_root / relative, (width, height))
            if record.ignore_path:
                ignore = _load_mask(truth.mask_root / record.ignore_path, (width, height)) & ~mask
        yield MapSample(
            image_id=record.image_id,
            path=path,
            scoremap=scoremap,
            label=record.label,
            boxes=map_boxes(record, (height, width), truncate_boxes),
            mask=mask,
            ignore=ignore,
        )
