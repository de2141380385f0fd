"""Pixel metrics (``wsol.evaluation.pixel``): PxAP and its PR curve (Choe et al., CVPR 2020, arXiv
2001.07437), F1⁺/F1⁻, IoU⁺/IoU⁻ and mIoU per image then averaged (Belharbi et al., arXiv 1907.12934 §4) at
the fixed ``pixel_threshold`` and at their best τ, the same pooled over pixels, and foreground/background
precision-recall curves.

Statistics: pooled positive/negative score histograms, per-image metric sums at every τ and at the fixed
threshold, the pooled confusion counts at the fixed threshold, summed interpolated precisions.
"""

from __future__ import annotations

import numpy as np

from wsol.evaluation.batch import PreparedBatch
from wsol.evaluation.family import FamilyResult, MetricFamily, State
from wsol.evaluation.pixel import confusion_curves, dice_iou, image_histograms, interpolated_precisions, pxap

PIXEL_METRICS = ("f1_pos", "f1_neg", "iou_pos", "iou_neg", "miou")


class PixelMetrics(MetricFamily):
    """``num_mask_images``, ``pxap``, F1/IoU at the fixed τ and ``*_best``, ``pooled``, their τ curves and the
    PR curves, over the images with a mask (and an object)."""

    def init_state(self) -> State:
        n_tau, n_bins, n_recall = len(self.grid.taus), len(self.grid.edges) - 1, len(self.grid.recall_axis)
        return {
            "images": np.zeros(()),
            "hist": np.zeros((2, n_bins)),  # positive, negative pixel score histograms (pooled)
            "curves": np.zeros((len(PIXEL_METRICS), n_tau)),  # per-image metric sums at each τ
            "fixed": np.zeros(len(PIXEL_METRICS)),  # per-image metric sums at pixel_threshold
            "confusion_fixed": np.zeros(4),  # pooled tp, fp, fn, tn at pixel_threshold
            "pr": np.zeros((2, n_recall)),  # summed interpolated precision, foreground / background
            "pr_counts": np.zeros(2),
        }

    def update(self, state: State, batch: PreparedBatch) -> None:
        if batch.pixels is None:
            return
        scores, positive, negative = batch.pixels
        pos_hist, neg_hist, counts = image_histograms(
            scores, positive, negative, self.grid.edges, self.grid.config.pixel_threshold
        )
        state["hist"][0] += pos_hist.sum(0)
        state["hist"][1] += neg_hist.sum(0)
        tp, fp, fn, tn = confusion_curves(pos_hist, neg_hist)
        curves = dice_iou(tp, fp, fn, tn)
        state["curves"] += np.stack([curves[name].sum(0) for name in PIXEL_METRICS])

        n_pos, n_neg, pos_above, neg_above = counts.T
        fixed = (pos_above, neg_above, n_pos - pos_above, n_neg - neg_above)  # tp, fp, fn, tn
        at_threshold = dice_iou(*fixed)
        state["fixed"] += np.array([float(at_threshold[name].sum()) for name in PIXEL_METRICS])
        state["confusion_fixed"] += np.array([float(count.sum()) for count in fixed])

        # Background PR: background predicted where score < τ, so its tp = tn and its fp = fn.
        for side, (hits, misses, totals) in enumerate(((tp, fp, n_pos), (tn, fn, n_neg))):
            precision, valid = interpolated_precisions(hits, misses, totals, self.grid.recall_axis)
            state["pr"][side] += precision[valid].sum(0)
            state["pr_counts"][side] += valid.sum()
        state["images"] += len(scores)

    def compute(self, state: State) -> FamilyResult:
        count = int(state["images"])
        out = FamilyResult({"num_mask_images": count})
        if not count:
            return out
        positive_hist, negative_hist = state["hist"]
        if positive_hist.sum() > 0:
            out.fields["pxap"], precision, recall = pxap(positive_hist, negative_hist)
            out.pr_curves |= {"pxap_precision": precision.tolist(), "pxap_recall": recall.tolist()}
        self._per_image_means(state, count, out)
        out.fields["pooled"] = self._pooled(state, out)
        out.pr_curves["recall"] = self.grid.recall_axis.tolist()
        for side, name in enumerate(("precision_fg", "precision_bg")):
            if state["pr_counts"][side]:
                out.pr_curves[name] = (state["pr"][side] / state["pr_counts"][side]).tolist()
        return out

    def _per_image_means(self, state: State, count: int, out: FamilyResult) -> None:
        """F1/IoU averaged over images, at the fixed threshold and at each metric's best τ."""
        means = state["curves"] * 100 / count
        fixed = state["fixed"] * 100 / count
        for i, name in enumerate(PIXEL_METRICS):
            out.curves[name] = means[i].tolist()
            best = int(np.argmax(means[i]))
            out.best_tau[name] = float(self.grid.taus[best])
            if name != "iou_neg":
                out.fields[name] = float(fixed[i])
                out.fields[f"{name}_best"] = float(means[i][best])

    def _pooled(self, state: State, out: FamilyResult) -> dict[str, float]:
        """Dice/IoU of the split's pooled pixels, at the fixed threshold and at their best τ."""
        positive_hist, negative_hist = state["hist"]
        n_tau = len(self.grid.taus)
        tp = positive_hist[::-1].cumsum()[::-1][:n_tau]
        fp = negative_hist[::-1].cumsum()[::-1][:n_tau]
        curves = dice_iou(tp, fp, positive_hist.sum() - tp, negative_hist.sum() - fp)
        at_fixed = dice_iou(*state["confusion_fixed"])
        pooled: dict[str, float] = {}
        for name in PIXEL_METRICS:
            curve = curves[name] * 100
            best = int(np.argmax(curve))
            pooled[name] = float(at_fixed[name]) * 100
            pooled[f"{name}_best"] = float(curve[best])
            out.best_tau[f"pooled_{name}"] = float(self.grid.taus[best])
            out.curves[f"pooled_{name}"] = curve.tolist()
        return pooled
