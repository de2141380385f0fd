"""Per-image statistics of an evaluation, for paired comparisons and per-image tables.

With ``EvaluatorConfig(per_image=True)`` the evaluator keeps, for each image, the statistics a one-image
evaluation would accumulate: box correctness at every τ and IoU threshold, positive/negative score histograms,
the pixel metrics at the fixed threshold and the classification outcome. Every split-level metric that is a
mean over images (BoxAcc, top-1 loc, F1⁺/F1⁻/IoU per image) is the mean of these per-image values at the same
τ, and PxAP is the PxAP of their summed histograms, so a bootstrap over images needs nothing else.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wsol.evaluation.pixel import confusion_curves, dice_iou
from wsol.io import atomic_write_bytes, atomic_write_text

FIXED_METRICS = ("f1_pos", "f1_neg", "iou_pos", "iou_neg", "miou")
"""Columns of :attr:`PerImageStats.pixel_fixed` (per-image values at ``pixel_threshold``, fractions)."""

_TAU_PIXEL = ("f1_pos", "f1_neg", "iou_pos", "miou")


@dataclass(frozen=True)
class PerImageStats:
    """Arrays over the n evaluated images, in update order (``-1`` / NaN where an image lacks the input)."""

    image_id: np.ndarray  # (n,) str
    label: np.ndarray  # (n,) int64
    predicted: np.ndarray  # (n,) int64, argmax of the logits
    top1: np.ndarray  # (n,) float64, 1 / 0
    top5: np.ndarray  # (n,) float64
    box: np.ndarray  # (n, 2, n_iou, n_tau) bool: box correct (largest contour, all contours)
    has_box: np.ndarray  # (n,) bool
    hist: np.ndarray  # (n, 2, n_bins) float32: positive / negative pixel score histograms
    has_mask: np.ndarray  # (n,) bool
    pixel_fixed: np.ndarray  # (n, 5) float64, FIXED_METRICS at pixel_threshold
    taus: np.ndarray  # (n_tau,)
    iou_thresholds: np.ndarray  # (n_iou,) int64, percent

    def __len__(self) -> int:
        return len(self.image_id)

    def save(self, path: Path) -> None:
        """Compressed ``.npz`` (no pickles), written atomically."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: getattr(self, name) for name in self.__dataclass_fields__})
        atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> PerImageStats:
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: not a per-image statistics file of `wsol evaluate` ({err})") from None

    def pixel_curves(self) -> dict[str, np.ndarray]:
        """Per-image F1⁺, F1⁻, IoU⁺, mIoU (n, n_tau) in percent (NaN rows for images without a mask)."""
        hist = torch.from_numpy(self.hist.astype(np.float64))
        curves = dice_iou(*confusion_curves(hist[:, 0], hist[:, 1]))
        out = {}
        for name in _TAU_PIXEL:
            values = curves[name].numpy() * 100
            values[~self.has_mask] = np.nan
            out[name] = values
        return out

    def values_at(self, tau_index: dict[str, int]) -> dict[str, np.ndarray]:
        """Per-image metric values (percent, NaN where undefined) at the τ index of each curve key.

        ``tau_index`` maps curve keys of ``EvaluationResult.curves`` (``box_acc@50``, ``box_acc_v2@30``,
        ``f1_pos``, …) to a position on the τ grid; the result has those keys plus ``max_box_acc_v2`` (mean
        over δ of ``box_acc_v2@δ``), ``top1_acc`` and the fixed-threshold pixel metrics.
        """
        out: dict[str, np.ndarray] = {"top1_acc": self.top1 * 100}
        for i, name in enumerate(FIXED_METRICS):
            out[name] = np.where(self.has_mask, self.pixel_fixed[:, i] * 100, np.nan)
        curves = self.pixel_curves() if self.has_mask.any() else {}
        for name, curve in curves.items():
            if name in tau_index:
                out[f"{name}_best"] = curve[:, tau_index[name]]
        for mode, suffix in enumerate(("", "_v2")):
            per_delta = []
            for d, delta in enumerate(self.iou_thresholds.tolist()):
                key = f"box_acc{suffix}@{delta}"
                if key in tau_index:
                    value = self.box[:, mode, d, tau_index[key]].astype(np.float64) * 100
                    out[key] = np.where(self.has_box, value, np.nan)
                    per_delta.append(out[key])
            if suffix and per_delta and len(per_delta) == len(self.iou_thresholds):
                out["max_box_acc_v2"] = np.mean(per_delta, axis=0)
        return out

    def write_csv(self, path: Path, values: dict[str, np.ndarray]) -> None:
        """One row per image: id, label, prediction and ``values`` (e.g. from :meth:`values_at`)."""
        names = sorted(values)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["image_id", "label", "predicted", *names])
        for i, image_id in enumerate(self.image_id.tolist()):
            cells = ["" if np.isnan(values[n][i]) else f"{values[n][i]:.4f}" for n in names]
            writer.writerow([image_id, int(self.label[i]), int(self.predicted[i]), *cells])
        atomic_write_text(Path(path), buffer.getvalue())
