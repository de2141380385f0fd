"""Predictions in standard formats: COCO (boxes with scores, masks as RLE), mask PNGs, ``.npy`` maps.

* ``predictions_coco.json``: a COCO document (``images``, ``categories``, ``annotations``; Lin et al.,
  ECCV 2014, arXiv 1405.0312) that ``pycocotools.coco.COCO`` reads. One annotation per predicted box: ``bbox``
  ``[x, y, w, h]``, ``score``, ``category_id`` (class index + 1), and ``segmentation``, the predicted mask
  inside that box as uncompressed RLE (column-major run lengths starting with a background run). Its
  ``annotations`` list is also a valid COCO *results* list for ``COCO.loadRes``.
* ``masks/<image_id>.png``: the binary mask (0 / 255).
* ``maps/<image_id>.npy``: the map in [0, 1], wsolevaluation's layout (what ``wsol evaluate --maps`` and the
  reference evaluator read).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from wsol.io import atomic_write_bytes, atomic_write_text

COCO_FILE = "predictions_coco.json"


@dataclass(frozen=True)
class ImagePrediction:
    """One image's decision: predicted class with its probability, boxes ``x0, y0, x1, y1``, mask."""

    image_id: str
    width: int
    height: int
    category: int
    score: float
    boxes: Sequence[Sequence[float]]
    mask: np.ndarray | None = None


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a 2-D binary mask: ``{"size": [h, w], "counts": [...]}`` (column-major)."""
    if mask.ndim != 2:
        raise ValueError(f"mask: expected a 2-D array, got shape {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def _box_mask(mask: np.ndarray, box: Sequence[float]) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = np.zeros_like(mask, dtype=bool)
    inside[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return mask.astype(bool) & inside


def coco_document(predictions: Sequence[ImagePrediction], class_names: Sequence[str]) -> dict[str, Any]:
    """The COCO dictionary of ``predictions`` (image ids 1..n in order, ``file_name`` = our image id)."""
    images, annotations = [], []
    for number, item in enumerate(predictions, start=1):
        images.append({"id": number, "file_name": item.image_id, "width": item.width, "height": item.height})
        for box in item.boxes:
            x0, y0, x1, y1 = (float(v) for v in box)
            annotation: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": number,
                "category_id": item.category + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "score": float(item.score),
                "iscrowd": 0,
            }
            if item.mask is not None:
                annotation["segmentation"] = rle_encode(_box_mask(item.mask, box))
            annotations.append(annotation)
    count = max([len(class_names), *(p.category + 1 for p in predictions)])
    names = [*class_names, *(str(i) for i in range(len(class_names), count))]
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    return {
        "info": {"description": "wsol predictions", "version": "1.0"},
        "images": images,
        "categories": categories,
        "annotations": annotations,
    }


def write_coco(path: Path, predictions: Sequence[ImagePrediction], class_names: Sequence[str]) -> Path:
    """Write the predictions as a COCO results document (:func:`coco_document`) atomically; ``path``."""
    atomic_write_text(Path(path), json.dumps(coco_document(predictions, class_names)) + "\n")
    return Path(path)


def _safe_relative(image_id: str) -> Path:
    relative = Path(image_id)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"image id {image_id!r}: expected a relative path without '..'")
    return relative


def write_map(maps_dir: Path, image_id: str, scoremap: np.ndarray) -> Path:
    """``maps_dir/<image_id>.npy`` (float32), atomically."""
    path = Path(maps_dir) / f"{_safe_relative(image_id)}.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(scoremap, dtype=np.float32))
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_mask(masks_dir: Path, image_id: str, mask: np.ndarray) -> Path:
    """``masks_dir/<image_id without extension>.png`` (0 / 255), atomically."""
    path = Path(masks_dir) / _safe_relative(image_id).with_suffix(".png")
    ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the mask")
    atomic_write_bytes(path, encoded.tobytes())
    return path
