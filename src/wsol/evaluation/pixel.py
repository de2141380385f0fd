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
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def bin_edges(cam_thresholds: np.ndarray) -> np.ndarray:
    """PxAP bin edges ``cam_thresholds + [1, 2, 3]`` (float64), as
    ``MaskEvaluator.threshold_list_right_edge``."""
    return np.append(np.asarray(cam_thresholds, dtype=np.float64), [1.0, 2.0, 3.0])


def image_histograms(
    scores: Tensor, positive: Tensor, negative: Tensor, edges: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-image histograms (B, n_bins) of the scores at positive and at negative pixels.

    ``scores`` (B, N) float, ``positive``/``negative`` (B, N) bool, ``edges`` float64 on the scores' device.
    Same bins as ``np.histogram(scores, bins=edges)``: half-open ``[e_i, e_{i+1})`` and the last one closed;
    scores outside ``[e_0, e_last]`` are dropped. Computed in float64 so float32 scores compare exactly.
    """
    n_bins = len(edges) - 1
    values = scores.to(torch.float64)
    index = torch.bucketize(values, edges, right=True) - 1
    index = torch.where(values == edges[-1], torch.full_like(index, n_bins - 1), index)
    inside = (index >= 0) & (index < n_bins)
    batch = scores.shape[0]
    flat = (index.clamp(0, n_bins - 1) + torch.arange(batch, device=scores.device)[:, None] * n_bins).reshape(
        -1
    )
    histograms = []
    for selected in (positive, negative):
        weights = (selected & inside).reshape(-1).to(torch.float64)
        hist = torch.zeros(batch * n_bins, dtype=torch.float64, device=scores.device)
        hist.index_add_(0, flat, weights)
        histograms.append(hist.reshape(batch, n_bins))
    return histograms[0], histograms[1]


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


def _safe_ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator`` with 1 where both are 0 (empty prediction of an empty class is perfect)."""
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), torch.ones_like(numerator))


def confusion_curves(positive_hist: Tensor, negative_hist: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-image ``tp, fp, fn, tn`` (B, n_tau) at τ_i (foreground = score ``>= τ_i``) from (B, n_bins)
    histograms.

    The last two bins ([1, 2), [2, 3]) are beyond the τ grid and only shift counts at every τ.
    """
    n_tau = positive_hist.shape[1] - 2
    above_pos = positive_hist.flip(1).cumsum(1).flip(1)[:, :n_tau]
    above_neg = negative_hist.flip(1).cumsum(1).flip(1)[:, :n_tau]
    total_pos = positive_hist.sum(1, keepdim=True)
    total_neg = negative_hist.sum(1, keepdim=True)
    return above_pos, above_neg, total_pos - above_pos, total_neg - above_neg


def dice_iou(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> dict[str, Tensor]:
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


def interpolated_precision(
    tp: np.ndarray, fp: np.ndarray, num_true: float, recall_axis: np.ndarray
) -> np.ndarray | None:
    """One image's interpolated precision at ``recall_axis`` (min-max entropy, Fig. 6).

    The paper unifies the recall axis and interpolates precision on it without saying how; we use the standard
    interpolated precision, the best precision at a recall >= r (0 beyond the largest recall reached), which
    is well defined where several thresholds share a recall. ``tp``/``fp`` over the τ grid; thresholds
    without any prediction are dropped; ``None`` when the image has no ground-truth pixel of the class or no
    prediction.
    """
    if num_true <= 0:
        return None
    keep = (tp + fp) > 0
    if not keep.any():
        return None
    recall = tp[keep] / num_true
    precision = tp[keep] / (tp[keep] + fp[keep])
    order = np.argsort(recall, kind="stable")
    recall, precision = recall[order], precision[order]
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= recall[i]
    index = np.searchsorted(recall, recall_axis, side="left")
    inside = index < len(recall)
    return np.where(inside, envelope[np.minimum(index, len(recall) - 1)], 0.0)
