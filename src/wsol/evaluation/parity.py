"""The reference evaluator's preprocessing, quirk for quirk (clovaai/wsolevaluation, Choe et al., CVPR 2020).

Every function here reproduces one step of ``wsolevaluation`` (``inference.CAMComputer``, ``evaluation.py``,
``util.py``) exactly, *including* what is arbitrary about it; docs/evaluation.md lists the quirks.
The default (non-parity) mode of :class:`wsol.evaluation.WSOLEvaluator` replaces some of them, see
``docs/evaluation.md``.
"""

from __future__ import annotations

import cv2
import numpy as np

RESIZE_LENGTH = 224
"""Quirk: the reference evaluates every image in a 224x224 frame (test transform ``Resize((224, 224))``)."""


def normalize_scoremap(cam: np.ndarray) -> np.ndarray:
    """``inference.normalize_scoremap``: NaN anywhere -> all zeros, constant -> all zeros, else min-max.

    Quirk: the arithmetic stays in the map's dtype (float32 for the reference's CAMs) with no epsilon, so the
    result is bit-identical only if the dtype is kept; we copy instead of working in place.
    """
    cam = np.array(cam, copy=True)
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    if cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def resize_scoremap(cam: np.ndarray, size: int = RESIZE_LENGTH) -> np.ndarray:
    """``CAMComputer``: ``cv2.resize(cam, (size, size), interpolation=INTER_CUBIC)`` before normalisation."""
    if cam.shape == (size, size):
        return cam
    return cv2.resize(cam, (size, size), interpolation=cv2.INTER_CUBIC)


def quantize(scoremap: np.ndarray) -> np.ndarray:
    """``compute_bboxes_from_scoremaps``: ``(scoremap * 255).astype(np.uint8)``.

    Quirk: truncation (not rounding) in the map's own dtype, so 0.999 -> 254 and only 1.0 -> 255.
    """
    return (scoremap * 255).astype(np.uint8)


def quantized_thresholds(quantized_max: int, cam_thresholds: np.ndarray) -> np.ndarray:
    """``int(threshold * np.max(scoremap_image))`` for every τ: the uint8 level a pixel must strictly exceed.

    Quirk: the threshold is relative to the (quantised) map maximum and truncated; with ``cv2.THRESH_BINARY``
    foreground is ``q > level`` (strict), so a τ grid of any step gives at most 256 distinct binarisations.
    """
    return (np.asarray(cam_thresholds, dtype=np.float64) * float(quantized_max)).astype(np.int64)


def resize_box(
    box: tuple[float, float, float, float], image_size: tuple[float, float], resize_size: tuple[float, float]
) -> tuple[int, int, int, int]:
    """``evaluation.resize_bbox``: scale an ``x0,y0,x1,y1`` box from ``image_size`` to ``resize_size`` (w, h).

    Quirk: the result is truncated with ``int()`` (so boxes shrink towards the origin by up to one pixel).
    """
    x0, y0, x1, y1 = map(float, box)
    width, height = map(float, image_size)
    new_width, new_height = map(float, resize_size)
    return (
        int(x0 * new_width / width),
        int(y0 * new_height / height),
        int(x1 * new_width / width),
        int(y1 * new_height / height),
    )


def cam_threshold_list(step: float) -> np.ndarray:
    """``np.arange(0, 1, cam_curve_interval)``: the τ grid (float64, 1 excluded)."""
    if not 0 < step < 1:
        raise ValueError(f"cam_curve_interval must be in (0, 1), got {step}")
    return np.arange(0, 1, step)


def check_scoremap(scoremap: np.ndarray, name: str) -> None:
    """``util.check_scoremap_validity``: a 2-D float array without NaN, values in [0, 1]."""
    if not isinstance(scoremap, np.ndarray) or scoremap.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D score map, got shape {getattr(scoremap, 'shape', None)}")
    if not np.issubdtype(scoremap.dtype, np.floating):
        raise ValueError(f"{name}: expected a float score map, got dtype {scoremap.dtype}")
    if np.isnan(scoremap).any():
        raise ValueError(f"{name}: score map contains NaN")
    if scoremap.size and (scoremap.min() < 0 or scoremap.max() > 1):
        raise ValueError(
            f"{name}: score map values must lie in [0, 1], got [{scoremap.min()}, {scoremap.max()}]"
        )
