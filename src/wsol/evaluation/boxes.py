"""Boxes from score maps and their IoU with ground truth (MaxBoxAcc, Choe et al., CVPR 2020,
arXiv 2001.07437).

The rule: quantise the map to uint8, keep pixels strictly above ``int(τ·max)``, trace contours with OpenCV
(``RETR_TREE``, ``CHAIN_APPROX_SIMPLE``), keep the contour of largest polygon area (V1) or all contours (V2),
and take each contour's bounding rectangle. :func:`box_correctness` evaluates a whole τ grid for one image at
once and returns exactly what the per-threshold loop returns. The uint8 quantisation leaves at most 256
distinct binarisations whatever the τ step; two engines exploit it:

* ``sweep`` (default when numba is installed): all 256 levels from three union-find sweeps over the pixels
  (``level_sets``), without tracing any contour;
* ``trace``: each distinct binarisation traced once with OpenCV, on its bounding crop (tracing is translation
  invariant, so contours and their order are unchanged), skipping binarisations whose union box cannot reach
  the smallest IoU threshold (a contour box ``b`` lies inside the union box ``U``, so
  ``IoU(b, g) <= |U ∩ g| / |g|``), with bounding rectangles and areas of all contours computed in one
  vectorised pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from wsol.evaluation.parity import quantize, quantized_thresholds

try:
    from wsol.evaluation.level_sets import level_ious, level_ious_batch
except ImportError:  # numba missing: box_correctness traces each distinct binarisation with OpenCV instead
    level_ious = level_ious_batch = None

BoxConvention = Literal["wsolevaluation", "inclusive"]
"""``wsolevaluation``: box end ``min(x + w, W - 1)`` (exclusive end read as inclusive, so predicted boxes are
one pixel too large except at the border; a map without contour yields the box ``[0, 0, 0, 0]``).
``inclusive``: the box covers exactly the contour's pixels, ``x + w - 1``, and a map without contour yields
no box."""

Engine = Literal["auto", "sweep", "trace"]

_NO_CONTOUR_BOX = np.zeros((1, 4), dtype=np.int64)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every pair of ``x0,y0,x1,y1`` boxes with the +1-pixel convention (``calculate_multiple_iou``).

    Areas are ``(x1 - x0 + 1)(y1 - y0 + 1)``; a pair whose union is not positive gets IoU 0. Returns (A, B).
    """
    a = np.asarray(boxes_a, dtype=np.int64).reshape(-1, 4)[:, None, :]
    b = np.asarray(boxes_b, dtype=np.int64).reshape(-1, 4)[None, :, :]
    inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    degenerate = union <= 0
    ious = inter / np.where(degenerate, 1, union)
    ious[degenerate] = 0.0
    return ious


def _trace(binary: np.ndarray) -> list[np.ndarray]:
    """``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` contours of a uint8 0/1 image."""
    return list(cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0])


def _contour_geometry(contours: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Bounding extents (N, 4) = xmin, ymin, xmax, ymax and polygon areas (N,) of contours, vectorised.

    The area is the shoelace formula on the integer vertices, which is exactly what ``cv2.contourArea``
    computes (integer products summed in double, halved; 1- and 2-point contours have area 0).
    """
    lengths = np.fromiter((len(c) for c in contours), dtype=np.int64, count=len(contours))
    points = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    starts = np.zeros(len(contours), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    x, y = points[:, 0], points[:, 1]
    extents = np.stack(
        [
            np.minimum.reduceat(x, starts),
            np.minimum.reduceat(y, starts),
            np.maximum.reduceat(x, starts),
            np.maximum.reduceat(y, starts),
        ],
        axis=1,
    )
    following = np.arange(1, len(points) + 1)
    following[starts + lengths - 1] = starts
    cross = x * y[following] - x[following] * y
    areas = np.abs(np.add.reduceat(cross, starts)) / 2.0
    return extents, areas


def _extents_to_boxes(extents: np.ndarray, width: int, height: int, convention: BoxConvention) -> np.ndarray:
    """``boundingRect`` extents -> boxes in the given convention."""
    boxes = extents.copy()
    if convention == "wsolevaluation":
        # Quirk: x1 = min(x + w, W - 1) where x + w is one past the last pixel, yet IoU treats it as
        # inclusive.
        boxes[:, 2] = np.minimum(extents[:, 2] + 1, width - 1)
        boxes[:, 3] = np.minimum(extents[:, 3] + 1, height - 1)
    return boxes


def boxes_from_map(
    scoremap: np.ndarray,
    tau: float,
    multi_contour: bool,
    convention: BoxConvention = "wsolevaluation",
) -> np.ndarray:
    """Boxes (N, 4) int64 ``x0,y0,x1,y1`` for one normalised map in [0, 1] at one relative threshold ``tau``.

    ``multi_contour=False``: the single box of the largest contour by ``cv2.contourArea`` (first one on ties,
    as Python's ``max``); ``True``: one box per contour, hole contours included (``RETR_TREE``). No contour
    gives ``[[0, 0, 0, 0]]`` in the ``wsolevaluation`` convention and an empty (0, 4) array in ``inclusive``.
    """
    scoremap = np.asarray(scoremap)
    if scoremap.ndim != 2:
        raise ValueError(f"scoremap: expected a 2-D map, got shape {scoremap.shape}")
    quantized = quantize(scoremap)
    level = int(quantized_thresholds(int(quantized.max()), np.array([tau]))[0])
    contours = _trace((quantized > level).view(np.uint8))
    height, width = quantized.shape
    if not contours:
        return _NO_CONTOUR_BOX.copy() if convention == "wsolevaluation" else np.zeros((0, 4), np.int64)
    extents, areas = _contour_geometry(contours)
    if not multi_contour:
        extents = extents[[int(np.argmax(areas))]]
    return _extents_to_boxes(extents, width, height, convention)


def box_correctness(
    quantized: np.ndarray,
    cam_thresholds: np.ndarray,
    gt_boxes: np.ndarray,
    iou_thresholds: np.ndarray,
    convention: BoxConvention = "wsolevaluation",
    engine: Engine = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """For one uint8 map, whether the best box IoU reaches each IoU threshold at each τ.

    Returns ``(largest, every)``, two bool arrays (n_iou, n_tau): ``largest`` uses the largest contour
    (MaxBoxAcc V1 rule), ``every`` all contours (V2 rule, best IoU over all boxes and all GT boxes).
    Identical to running :func:`boxes_from_map` for every τ and comparing ``max IoU >= threshold``
    (``BoxEvaluator.accumulate``). ``engine``: ``sweep`` (``level_sets``, needs numba), ``trace`` (OpenCV on
    each distinct binarisation) or ``auto`` (sweep when numba is installed).
    """
    largest, every = box_correctness_batch(
        np.asarray(quantized)[None], cam_thresholds, [gt_boxes], iou_thresholds, convention, engine
    )
    return largest[0], every[0]


def box_correctness_batch(
    quantized: np.ndarray,
    cam_thresholds: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    iou_thresholds: np.ndarray,
    convention: BoxConvention = "wsolevaluation",
    engine: Engine = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`box_correctness` of a (B, H, W) uint8 batch with one GT box array per map; returns two bool
    arrays (B, n_iou, n_tau). The sweep engine handles the whole batch in one compiled call."""
    quantized = np.ascontiguousarray(quantized, dtype=np.uint8)
    gts = [np.asarray(gt, dtype=np.int64).reshape(-1, 4) for gt in gt_boxes]
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    if quantized.ndim != 3 or len(gts) != len(quantized):
        raise ValueError(f"gt_boxes: expected one box array per map of the (B, H, W) batch, got {len(gts)}")
    if any(len(gt) == 0 for gt in gts):
        raise ValueError("gt_boxes: expected at least one ground-truth box")
    if engine == "auto":
        engine = "trace" if level_ious_batch is None else "sweep"
    if engine == "sweep":
        if level_ious_batch is None:
            raise ValueError("engine='sweep' needs numba (pip install numba)")
        best_largest, best_every = _sweep_engine(quantized, cam_thresholds, gts, convention)
    elif engine == "trace":
        per_map = [
            _trace_engine(q, cam_thresholds, gt, thresholds, convention)
            for q, gt in zip(quantized, gts, strict=True)
        ]
        best_largest = np.array([largest for largest, _ in per_map]).reshape(len(gts), -1)
        best_every = np.array([every for _, every in per_map]).reshape(len(gts), -1)
    else:
        raise ValueError(f"engine: expected 'auto', 'sweep' or 'trace', got {engine!r}")
    largest = best_largest[:, None, :] >= thresholds[None, :, None]
    every = best_every[:, None, :] >= thresholds[None, :, None]
    return largest, every


def _null_box_iou(gt: np.ndarray, convention: BoxConvention) -> float:
    """IoU for a binarisation without contour: the reference's ``[0, 0, 0, 0]`` box, or no box (0)."""
    return float(iou_matrix(_NO_CONTOUR_BOX, gt).max()) if convention == "wsolevaluation" else 0.0


def _sweep_engine(
    quantized: np.ndarray, cam_thresholds: np.ndarray, gts: list[np.ndarray], convention: BoxConvention
) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU (B, n_tau) per τ from the three union-find sweeps of ``level_sets`` (all 256 levels at
    once)."""
    assert level_ious_batch is not None
    maxima = quantized.reshape(len(quantized), -1).max(axis=1).astype(np.int64)
    levels = (np.asarray(cam_thresholds, dtype=np.float64)[None, :] * maxima[:, None]).astype(np.int64)
    bounds = np.zeros(len(gts) + 1, dtype=np.int64)
    np.cumsum([len(gt) for gt in gts], out=bounds[1:])
    all_gts = np.concatenate(gts)
    largest, every = level_ious_batch(quantized, all_gts, bounds, convention == "wsolevaluation")
    empty = levels >= maxima[:, None]
    safe = np.minimum(levels, 255)
    null = np.zeros((len(gts), 1))
    if convention == "wsolevaluation":  # the reference's [0, 0, 0, 0] box, best over each map's GT boxes
        null[:, 0] = np.maximum.reduceat(iou_matrix(_NO_CONTOUR_BOX, all_gts)[0], bounds[:-1])
    return (
        np.where(empty, null, np.take_along_axis(largest, safe, axis=1)),
        np.where(empty, null, np.take_along_axis(every, safe, axis=1)),
    )


def _trace_engine(
    quantized: np.ndarray,
    cam_thresholds: np.ndarray,
    gt: np.ndarray,
    thresholds: np.ndarray,
    convention: BoxConvention,
) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU per τ (exact where it can reach ``min(thresholds)``) by tracing each distinct binarisation.

    Distinct binarisations are traced once, on their bounding crop; levels whose union box cannot reach the
    smallest IoU threshold are skipped (their IoU is reported as 0).
    """
    height, width = quantized.shape
    levels = quantized_thresholds(int(quantized.max()), cam_thresholds)

    histogram = np.bincount(quantized.ravel(), minlength=256)
    above = quantized.size - np.cumsum(histogram)  # above[t] = number of pixels with value > t
    distinct_levels, level_index = np.unique(levels, return_inverse=True)
    # Levels with the same number of pixels above them binarise identically (superlevel sets are nested).
    counts = above[distinct_levels]
    first_of_run = np.ones(len(distinct_levels), dtype=bool)
    first_of_run[1:] = counts[1:] != counts[:-1]
    run_of_level = np.cumsum(first_of_run) - 1
    rep_levels = distinct_levels[first_of_run]
    rep_counts = counts[first_of_run]
    tau_run = run_of_level[level_index]
    n_runs = len(rep_levels)

    best_largest = np.zeros(n_runs)
    best_every = np.zeros(n_runs)

    empty = rep_counts == 0
    best_largest[empty] = best_every[empty] = _null_box_iou(gt, convention)

    busy = np.flatnonzero(~empty)
    if len(busy):
        row_on = quantized.max(axis=1)[None, :] > rep_levels[busy, None]
        col_on = quantized.max(axis=0)[None, :] > rep_levels[busy, None]
        y0 = np.argmax(row_on, axis=1)
        y1 = height - 1 - np.argmax(row_on[:, ::-1], axis=1)
        x0 = np.argmax(col_on, axis=1)
        x1 = width - 1 - np.argmax(col_on[:, ::-1], axis=1)
        union = _extents_to_boxes(np.stack([x0, y0, x1, y1], axis=1), width, height, convention)
        traced = _may_reach(union, gt, thresholds.min())

        contours: list[np.ndarray] = []
        contour_run: list[int] = []
        offsets: list[tuple[int, int]] = []
        for i in np.flatnonzero(traced):
            run = busy[i]
            crop = quantized[y0[i] : y1[i] + 1, x0[i] : x1[i] + 1] > rep_levels[run]
            found = _trace(crop.view(np.uint8))
            contours.extend(found)
            contour_run.extend([run] * len(found))
            offsets.extend([(x0[i], y0[i])] * len(found))
        if contours:
            frame = (width, height, convention)
            _reduce_contours(contours, offsets, contour_run, gt, frame, (best_largest, best_every))

    return best_largest[tau_run], best_every[tau_run]


def _reduce_contours(
    contours: list[np.ndarray],
    offsets: list[tuple[int, int]],
    contour_run: list[int],
    gt: np.ndarray,
    frame: tuple[int, int, BoxConvention],
    out: tuple[np.ndarray, np.ndarray],
) -> None:
    """Best IoU per traced run over all its contours into ``out[1]``, and of its first contour of maximal
    area (Python's ``max(contours, key=cv2.contourArea)``) into ``out[0]``.

    ``contour_run`` (non-decreasing) gives each contour's run and ``offsets`` its crop's origin; ``frame`` is
    (width, height, convention) of the map.
    """
    width, height, convention = frame
    best_largest, best_every = out
    extents, areas = _contour_geometry(contours)
    extents += np.tile(np.asarray(offsets, dtype=np.int64), (1, 2))
    boxes = _extents_to_boxes(extents, width, height, convention)
    best = iou_matrix(boxes, gt).max(axis=1)
    runs = np.asarray(contour_run, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    seg_runs = runs[starts]
    best_every[seg_runs] = np.maximum.reduceat(best, starts)
    seg_max = np.maximum.reduceat(areas, starts)
    seg_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(runs)]))
    candidate = np.where(areas == seg_max[seg_of], np.arange(len(areas)), len(areas))
    best_largest[seg_runs] = best[np.minimum.reduceat(candidate, starts)]


def _may_reach(union: np.ndarray, gt: np.ndarray, threshold: float) -> np.ndarray:
    """Whether a box inside each union box (U, 4) can reach IoU ``threshold`` with some GT box: a box ``b``
    inside ``U`` has ``IoU(b, g) <= |U ∩ g| / |g|``."""
    inter_w = np.maximum(
        0, np.minimum(union[:, None, 2], gt[None, :, 2]) - np.maximum(union[:, None, 0], gt[None, :, 0]) + 1
    )
    inter_h = np.maximum(
        0, np.minimum(union[:, None, 3], gt[None, :, 3]) - np.maximum(union[:, None, 1], gt[None, :, 1]) + 1
    )
    gt_area = (gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)
    bound = np.where(gt_area[None, :] > 0, inter_w * inter_h / np.maximum(gt_area[None, :], 1), np.inf)
    return bound.max(axis=1) >= threshold
