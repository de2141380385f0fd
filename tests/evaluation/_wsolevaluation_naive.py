"""An independent, deliberately naive re-implementation of wsolevaluation's evaluators (per-threshold loops).

Written from the reference's description (research/peers.md §1.3-1.7): one ``cv2.threshold`` +
``findContours`` per τ on the full map, ``max(contours, key=cv2.contourArea)``, ``boundingRect`` with the
``min(x + w, W - 1)`` end, pairwise IoU with the +1 convention in plain Python, ``np.histogram`` PxAP. It
shares no code with ``wsol``.
"""

from __future__ import annotations

import cv2
import numpy as np


def _naive_contours(scoremap: np.ndarray, tau: float) -> list:
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    _, binary = cv2.threshold(image, int(tau * np.max(image)), 255, cv2.THRESH_BINARY)
    return list(cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0])


def _naive_contour_boxes(contours: list, shape: tuple[int, ...], multi_contour: bool) -> list[list[int]]:
    height, width = shape
    if len(contours) == 0:
        return [[0, 0, 0, 0]]
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return boxes


def naive_boxes(scoremap: np.ndarray, tau: float, multi_contour: bool) -> list[list[int]]:
    return _naive_contour_boxes(_naive_contours(scoremap, tau), scoremap.shape, multi_contour)


def naive_iou(a: list[int], b: list[int]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1) * max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return 0.0 if union <= 0 else inter / union


def naive_correct(
    scoremap: np.ndarray, taus: np.ndarray, gt: list[list[int]], deltas: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(n_delta, n_tau) bool for the largest contour and for all contours: best IoU >= delta/100."""
    out = np.zeros((2, len(deltas), len(taus)), dtype=bool)
    for j, tau in enumerate(taus):
        contours = _naive_contours(scoremap, tau)
        for mode in (0, 1):
            boxes = _naive_contour_boxes(contours, scoremap.shape, multi_contour=bool(mode))
            best = max(naive_iou(box, g) for box in boxes for g in gt)
            for i, delta in enumerate(deltas):
                out[mode, i, j] = best >= delta / 100
    return out[0], out[1]


def naive_resize_box(box: list[float], image_size: tuple[int, int], size: int) -> list[int]:
    return [
        int(float(box[0]) * size / image_size[0]),
        int(float(box[1]) * size / image_size[1]),
        int(float(box[2]) * size / image_size[0]),
        int(float(box[3]) * size / image_size[1]),
    ]


def naive_max_box_acc(
    scoremaps: list[np.ndarray], gts: list[list[list[int]]], taus: np.ndarray, deltas: list[int]
) -> tuple[list[float], list[float]]:
    """MaxBoxAcc per delta (``BoxEvaluator.compute``) for the largest contour and for all contours."""
    counts = np.zeros((2, len(deltas), len(taus)))
    for scoremap, gt in zip(scoremaps, gts, strict=True):
        counts += np.stack(naive_correct(scoremap, taus, gt, deltas))
    accuracies = counts * 100.0 / len(scoremaps)
    return [float(row.max()) for row in accuracies[0]], [float(row.max()) for row in accuracies[1]]


def naive_pxap(scoremaps: list[np.ndarray], gt_masks: list[np.ndarray], taus: np.ndarray) -> float:
    """``MaskEvaluator``: gt_masks hold 1 (foreground), 0 (background) and 255 (ignored)."""
    edges = np.append(taus, [1.0, 2.0, 3.0])
    true_hist = np.zeros(len(taus) + 2)
    false_hist = np.zeros(len(taus) + 2)
    for scoremap, gt in zip(scoremaps, gt_masks, strict=True):
        true_hist += np.histogram(scoremap[gt == 1], bins=edges)[0]
        false_hist += np.histogram(scoremap[gt == 0], bins=edges)[0]
    tp = true_hist[::-1].cumsum()
    fn = true_hist.sum() - tp
    fp = false_hist[::-1].cumsum()
    nonzero = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
    return float((precision[1:] * np.diff(recall))[nonzero[1:]].sum() * 100)


def naive_normalize(cam: np.ndarray) -> np.ndarray:
    """``inference.normalize_scoremap``."""
    cam = cam.copy()
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    if cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def naive_dice_curve(scoremaps: list[np.ndarray], masks: list[np.ndarray], taus: np.ndarray) -> np.ndarray:
    """Per-image mean Dice of the foreground (F1+) at each tau, foreground = score >= tau; empty/empty = 1."""
    total = np.zeros(len(taus))
    for scoremap, mask in zip(scoremaps, masks, strict=True):
        for j, tau in enumerate(taus):
            predicted = scoremap >= tau
            tp = np.sum(predicted & mask)
            denominator = predicted.sum() + mask.sum()
            total[j] += 1.0 if denominator == 0 else 2 * tp / denominator
    return total / len(scoremaps) * 100
