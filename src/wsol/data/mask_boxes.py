"""Boxes derived from masks, for datasets that have masks but no boxes (PH2, BUSI, GlaS, Oxford-IIIT Pet).

Two kinds, both written by the importers:

* **component boxes** (``localization.txt``, the boxes every box metric uses): one tight box per object
  part: per instance id of an instance-labelled mask (GlaS), per 8-connected component of a binary mask
  otherwise, keeping those of at least ``min_area_fraction`` of the image (annotation specks are dropped; the
  largest part is always kept). MaxBoxAcc counts a predicted box as correct when it matches *any* of them,
  as for ILSVRC's several instances.
* **the whole-object box** (``extra_boxes.txt``, kind ``object``): the tight box of the whole foreground,
  kept for users who want one box per image (it equals the component box when the object is in one piece).

Coordinates are continuous pixels: a box ``x0, y0, x1, y1`` covers columns ``x0 .. x1 - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wsol.data.format import Box

OBJECT_BOX = "object"


@dataclass(frozen=True)
class MaskBoxOptions:
    """``min_area_fraction``: smallest part (fraction of the image area) that gets its own box."""

    min_area_fraction: float = 0.001

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_area_fraction < 1.0:
            raise ValueError(
                f"MaskBoxOptions.min_area_fraction: expected a value in [0, 1), got {self.min_area_fraction}"
            )


def _parts(labels: np.ndarray) -> list[tuple[int, Box]]:
    """``(area, box)`` of every instance id (several ids) or 8-connected component (one id)."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if ids.size > 1:
        parts = []
        for value in ids:
            box = object_box(labels == value)
            assert box is not None
            parts.append((int((labels == value).sum()), box))
        return parts
    count, _, stats, _ = cv2.connectedComponentsWithStats((labels > 0).astype(np.uint8), connectivity=8)
    return [
        (int(area), (float(x), float(y), float(x + w), float(y + h)))
        for x, y, w, h, area in stats[1:count].tolist()
    ]


def component_boxes(labels: np.ndarray, options: MaskBoxOptions = MaskBoxOptions()) -> list[Box]:
    """Boxes of the parts of at least ``min_area_fraction`` of the image (the largest part always)."""
    parts = _parts(labels)
    if not parts:
        return []
    smallest = options.min_area_fraction * labels.size
    largest = max(area for area, _ in parts)
    return sorted(box for area, box in parts if area >= smallest or area == largest)


def object_box(labels: np.ndarray) -> Box | None:
    """Tight box of the whole foreground (``labels > 0``), or ``None`` for an empty mask."""
    ys, xs = np.nonzero(labels > 0)
    if xs.size == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
