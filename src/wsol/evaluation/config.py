"""How the evaluator turns maps into metrics (:class:`EvaluatorConfig`) and the fixed axes it derives
(:class:`Grid`: the τ grid, PxAP bin edges, IoU thresholds, recall axis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from wsol.evaluation import parity as ref
from wsol.evaluation.boxes import BoxConvention
from wsol.evaluation.pixel import bin_edges


@dataclass(frozen=True)
class EvaluatorConfig:
    """How maps are turned into metrics.

    ``parity="wsolevaluation"`` reproduces clovaai/wsolevaluation exactly: maps of another size are resized
    to the 224x224 frame (bicubic), min-max normalised in float32 with NaN/constant maps zeroed
    (``normalize=True``, as ``CAMComputer``) or checked to lie in [0, 1] (``normalize=False``, as the
    ``.npy`` evaluator), GT boxes rescaled with truncation, boxes with the ``min(x + w, W - 1)`` convention.
    ``parity=None`` (default) evaluates at the maps' own resolution (or ``frame_size``), normalises in
    float64, rounds rescaled GT boxes and uses boxes that cover exactly the contour (``docs/evaluation.md``
    lists every difference).
    """

    parity: Literal["wsolevaluation"] | None = None
    cam_curve_interval: float = 0.001
    iou_thresholds: tuple[int, ...] = (30, 50, 70)
    pixel_threshold: float = 0.5
    normalize: bool = True
    frame_size: int | None = None
    pr_recall_step: float = 0.01
    workers: int = 0
    weightmap_score: bool = False
    """Also average the weight-map paper's early-stopping score S (arXiv 2111.14131 Eq. 6) over the maps."""
    weightmap_max_box: float | None = 1.0
    """S's full-frame guard (:func:`wsol.evaluation.weightmap_score.weightmap_s_score`): a map whose box
    covers at least this fraction of the map scores 0 (1.0: only the whole map); ``None``: the paper-exact
    S."""
    per_image: bool = False
    """Also keep every image's statistics for :meth:`WSOLEvaluator.per_image` (memory grows with the images;
    one process only: ``sync_distributed`` does not gather them)."""

    def __post_init__(self) -> None:
        if self.parity not in (None, "wsolevaluation"):
            raise ValueError(
                f"EvaluatorConfig.parity: expected None or 'wsolevaluation', got {self.parity!r}"
            )
        if not 0 < self.cam_curve_interval < 1:
            raise ValueError(
                f"EvaluatorConfig.cam_curve_interval: expected in (0, 1), got {self.cam_curve_interval}"
            )
        object.__setattr__(self, "iou_thresholds", tuple(int(t) for t in self.iou_thresholds))
        if not self.iou_thresholds or any(not 0 < t <= 100 for t in self.iou_thresholds):
            raise ValueError(
                f"EvaluatorConfig.iou_thresholds: expected percentages in (0, 100], got {self.iou_thresholds}"
            )
        if not 0 <= self.pixel_threshold <= 1:
            raise ValueError(
                f"EvaluatorConfig.pixel_threshold: expected in [0, 1], got {self.pixel_threshold}"
            )
        if self.frame_size is not None and self.frame_size < 1:
            raise ValueError(f"EvaluatorConfig.frame_size: expected a positive size, got {self.frame_size}")
        if not 0 < self.pr_recall_step <= 0.5:
            raise ValueError(
                f"EvaluatorConfig.pr_recall_step: expected in (0, 0.5], got {self.pr_recall_step}"
            )
        if self.weightmap_max_box is not None and not 0 < self.weightmap_max_box <= 1:
            raise ValueError(
                f"EvaluatorConfig.weightmap_max_box: expected null or a fraction in (0, 1], got "
                f"{self.weightmap_max_box}"
            )
        if self.workers < 0:
            raise ValueError(f"EvaluatorConfig.workers: expected >= 0, got {self.workers}")

    @property
    def box_convention(self) -> BoxConvention:
        return "wsolevaluation" if self.parity else "inclusive"

    @property
    def frame(self) -> int | None:
        """Side of the square evaluation frame, or None for the maps' own resolution."""
        if self.frame_size is None and self.parity:
            return ref.RESIZE_LENGTH
        return self.frame_size

    def cam_thresholds(self) -> np.ndarray:
        return ref.cam_threshold_list(self.cam_curve_interval)

    def recall_axis(self) -> np.ndarray:
        steps = int(round(1 / self.pr_recall_step))
        return np.linspace(0.0, 1.0, steps + 1)


@dataclass(frozen=True)
class Grid:
    """The axes every metric family shares, derived once from the configuration."""

    config: EvaluatorConfig
    taus: np.ndarray
    edges: np.ndarray
    iou_fractions: np.ndarray
    recall_axis: np.ndarray

    @classmethod
    def from_config(cls, config: EvaluatorConfig) -> Grid:
        taus = config.cam_thresholds()
        return cls(
            config=config,
            taus=taus,
            edges=bin_edges(taus),
            iou_fractions=np.asarray(config.iou_thresholds, dtype=np.float64) / 100,
            recall_axis=config.recall_axis(),
        )
