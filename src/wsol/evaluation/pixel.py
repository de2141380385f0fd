"""Pixel-level metrics from score histograms: PxAP, F1⁺/F1⁻ (Dice), IoU/mIoU and precision-recall curves.

Everything derives from per-image histograms of the scores of ground-truth foreground and background pixels
over the bins of the τ grid, so the evaluator keeps sufficient statistics only:

* PxAP (Choe et al., CVPR 2020; ``MaskEvaluator``): histograms pooled over the split, bins
  ``[τ_0, τ_1), …, [τ_{n-1}, 1), [1, 2), [2, 3]``, ``tp``/``fp`` = counts of scores ``>=`` each lower edge
  taken from the top, AP = Σ precision_i · (recall_i − recall_{i−1}) over bins with a prediction, in %.
* F1⁺ / F1⁻ (Belharbi et al., min-max entropy, §4 "Evaluation"): the Dice of the foreground and of the
  background (the complements) per image, then averaged over images, in %. A pixel is predicted foreground at
  τ when its score is ``>= τ``. An image where both the prediction and the ground truth of a class are empty
  scores 100.
* IoU⁺ / IoU⁻ per image likewise, mIoU = (IoU⁺ + IoU⁻) / 2 (the survey's mIoU, per image then averaged).
* PR curves (min-max entropy, Fig. 6): per image, foreground (and background) precision against recall over
  the τ grid, interpolated on a common recall axis (step 0.01; best precision at recall >= r), averaged over
  images.

Per-image histograms, the counts at the fixed threshold and the interpolated PR curves of a whole batch are
compiled loops (numba) over the pixels: one pass per image, no Python work per image.
"""

from __future__ import annotations

import numba
import numpy as np

from wsol.evaluation.arrays import ArrayLike, to_numpy


def bin_edges(cam_thresholds: np.ndarray) -> np.ndarray:
    """PxAP bin edges ``cam_thresholds + [1, 2, 3]`` (float64), as
    ``MaskEvaluator.threshold_list_right_edge``."""
    return np.append(np.asarray(cam_thresholds, dtype=np.float64), [1.0, 2.0, 3.0])


@numba.njit(cache=True, error_model="numpy")
def _bin_index(value: float, edges: np.ndarray, inverse_step: float) -> int:
    """The bin of ``value`` in ``[edges[0], edges[-1]]``: a guess from the first bin's width, walked to the
    bin with ``edges[i] <= value < edges[i + 1]`` (the last bin closed), exact for any sorted edges."""
    last = len(edges) - 2
    index = min(max(int((value - edges[0]) * inverse_step), 0), last)
    while index > 0 and edges[index] > value:
        index -= 1
    while index < last and edges[index + 1] <= value:
        index += 1
    return index


@numba.njit(cache=True, error_model="numpy")
def _histograms(
    scores: np.ndarray, positive: np.ndarray, negative: np.ndarray, edges: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_images, n_pixels = scores.shape
    n_bins = len(edges) - 1
    inverse_step = 1.0 / (edges[1] - edges[0])
    pos_hist = np.zeros((n_images, n_bins))
    neg_hist = np.zeros((n_images, n_bins))
    counts = np.zeros((n_images, 4))
    for b in range(n_images):
        for i in range(n_pixels):
            is_positive, is_negative = positive[b, i], negative[b, i]
            if not (is_positive or is_negative):
                continue
            value = np.float64(scores[b, i])
            above = value >= threshold
            index = _bin_index(value, edges, inverse_step) if edges[0] <= value <= edges[-1] else -1
            if is_positive:
                counts[b, 0] += 1
                counts[b, 2] += above
                if index >= 0:
                    pos_hist[b, index] += 1
            if is_negative:
                counts[b, 1] += 1
                counts[b, 3] += above
                if index >= 0:
                    neg_hist[b, index] += 1
    return pos_hist, neg_hist, counts


def image_histograms(
    scores: ArrayLike, positive: ArrayLike, negative: ArrayLike, edges: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image histograms (B, n_bins) of the scores at positive and at negative pixels, and per-image
    counts (B, 4): positive pixels, negative pixels, and those of each with a score ``>= threshold``.

    ``scores`` (B, N) float, ``positive``/``negative`` (B, N) bool (a pixel in neither is ignored), ``edges``
    float64. Same bins as ``np.histogram(scores, bins=edges)``: half-open ``[e_i, e_{i+1})`` and the last one
    closed; scores outside ``[e_0, e_last]`` are dropped. Scores are compared in float64, so float32 scores
    compare exactly.
    """
    scores = to_numpy(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    return _histograms(
        np.ascontiguousarray(scores),
        np.ascontiguousarray(to_numpy(positive), dtype=np.bool_),
        np.ascontiguousarray(to_numpy(negative), dtype=np.bool_),
        np.asarray(to_numpy(edges), dtype=np.float64),
        float(threshold),
    )


def pxap(positive_hist: np.ndarray, negative_hist: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """PxAP (%) with the precision and recall arrays, exactly as ``MaskEvaluator.compute``.

    Raises ValueError when the pooled ground truth has no positive pixel (the reference raises too).
    """
    positive_hist = np.asarray(positive_hist, dtype=np.float64)
    negative_hist = np.asarray(negative_hist, dtype=np.float64)
    num_positive = positive_hist.sum()
    tp = positive_hist[::-1].cumsum()
    fn = num_positive - tp
    fp = negative_hist[::-1].cumsum()
    if ((tp + fn) <= 0).all():
        raise ValueError("PxAP: no positive ground-truth pixel in the evaluated masks")
    if ((tp + fp) <= 0).all():
        raise ValueError("PxAP: no scored pixel in the evaluated masks")
    non_zero = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
    auc = (precision[1:] * np.diff(recall))[non_zero[1:]].sum() * 100
    return float(auc), precision, recall


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 1 where both are 0 (empty prediction of an empty class is perfect)."""
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), 1.0)


def confusion_curves(
    positive_hist: np.ndarray, negative_hist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-image ``tp, fp, fn, tn`` (B, n_tau) at τ_i (foreground = score ``>= τ_i``) from (B, n_bins)
    histograms.

    The last two bins ([1, 2), [2, 3]) are beyond the τ grid and only shift counts at every τ.
    """
    n_tau = positive_hist.shape[1] - 2
    above_pos = positive_hist[:, ::-1].cumsum(1)[:, ::-1][:, :n_tau]
    above_neg = negative_hist[:, ::-1].cumsum(1)[:, ::-1][:, :n_tau]
    total_pos = positive_hist.sum(1, keepdims=True)
    total_neg = negative_hist.sum(1, keepdims=True)
    return above_pos, above_neg, total_pos - above_pos, total_neg - above_neg


def dice_iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """F1⁺, F1⁻ (Dice of foreground / background), IoU⁺, IoU⁻ and mIoU, elementwise, as fractions."""
    f1_pos = _safe_ratio(2 * tp, 2 * tp + fp + fn)
    f1_neg = _safe_ratio(2 * tn, 2 * tn + fn + fp)
    iou_pos = _safe_ratio(tp, tp + fp + fn)
    iou_neg = _safe_ratio(tn, tn + fn + fp)
    return {
        "f1_pos": f1_pos,
        "f1_neg": f1_neg,
        "iou_pos": iou_pos,
        "iou_neg": iou_neg,
        "miou": (iou_pos + iou_neg) / 2,
    }


@numba.njit(cache=True, error_model="numpy")
def _envelopes(
    hits: np.ndarray, misses: np.ndarray, totals: np.ndarray, recall_axis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_images, n_tau = hits.shape
    n_axis = len(recall_axis)
    scale = (n_axis - 1) / (recall_axis[-1] - recall_axis[0]) if n_axis > 1 else 0.0
    out = np.zeros((n_images, n_axis))
    valid = np.zeros(n_images, np.bool_)
    for b in range(n_images):
        if totals[b] <= 0:
            continue
        for t in range(n_tau):
            predicted = hits[b, t] + misses[b, t]
            if predicted <= 0:
                continue
            valid[b] = True
            recall = hits[b, t] / totals[b]
            precision = hits[b, t] / predicted
            # the last axis point at or below this recall (-1: none)
            j = min(max(int((recall - recall_axis[0]) * scale), 0), n_axis - 1)
            while j >= 0 and recall_axis[j] > recall:
                j -= 1
            while j + 1 < n_axis and recall_axis[j + 1] <= recall:
                j += 1
            if j >= 0 and precision > out[b, j]:
                out[b, j] = precision
        for j in range(n_axis - 2, -1, -1):
            out[b, j] = max(out[b, j], out[b, j + 1])
    return out, valid


def interpolated_precisions(
    hits: np.ndarray, misses: np.ndarray, totals: np.ndarray, recall_axis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision (B, len(recall_axis)) of B images (min-max entropy, Fig. 6), and which images
    have one (B,).

    The paper unifies the recall axis and interpolates precision on it without saying how; we use the standard
    interpolated precision, the best precision at a recall >= r (0 beyond the largest recall reached), which
    is well defined where several thresholds share a recall. ``hits``/``misses`` (B, n_tau) are the true and
    false positives over the τ grid and ``totals`` (B,) the ground-truth pixels of the class; thresholds
    without any prediction are dropped; an image without a ground-truth pixel of the class or without any
    prediction has no curve. One pass over the τ grid per image: each threshold's precision is credited to
    the last axis point at or below its recall, then a running maximum from the right.
    """
    return _envelopes(
        np.asarray(hits, dtype=np.float64),
        np.asarray(misses, dtype=np.float64),
        np.asarray(totals, dtype=np.float64),
        np.asarray(recall_axis, dtype=np.float64),
    )


def interpolated_precision(
    tp: np.ndarray, fp: np.ndarray, num_true: float, recall_axis: np.ndarray
) -> np.ndarray | None:
    """One image's :func:`interpolated_precisions`, or ``None`` when it has no curve."""
    curves, valid = interpolated_precisions(tp[None], fp[None], np.array([num_true]), recall_axis)
    return curves[0] if valid[0] else None
