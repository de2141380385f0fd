"""Per-image threshold selection without ground truth: the two-stage localization of Z. Zhang (MSc thesis,
"Revisiting Class Activation Map", Concordia University 2021, §5.4.3 and §5.5.1).

For a candidate τ the normalised map is binarised as the evaluator does (uint8 levels, pixels above
``int(τ·max)``) and the box of its largest contour is taken. The box's *seeds* are the foreground pixels on
the box's four edges (the points that determine it); a τ with fewer than 4 is skipped (§5.5.1). Each seed's
feature vector (nearest cell of the last feature map) is compared by cosine similarity (Eq. 22) with every
cell; the seeds' similarity maps are averaged into one, and its variance is the box's *contrast*. A boundary
point lies between object and background, so it resembles both and the right box has the lowest contrast;
the chosen τ minimises it. The thesis enumerates τ every 0.05; as a second stage we refine around the coarse
winner on a finer grid (``fine_step``, ± one coarse step). :func:`oracle_comparison` scores it against the
oracle τ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wsol.evaluation.boxes import boxes_from_map, iou_matrix
from wsol.evaluation.parity import quantize, quantized_thresholds


@dataclass(frozen=True)
class TwoStageConfig:
    """Coarse step (0.05, thesis), fine step of the refinement, minimum number of seed points (4, thesis)."""

    coarse_step: float = 0.05
    fine_step: float = 0.01
    min_seeds: int = 4

    def __post_init__(self) -> None:
        if not 0.0 < self.fine_step <= self.coarse_step < 1.0:
            raise ValueError(
                f"expected 0 < fine_step <= coarse_step < 1, got {self.fine_step}, {self.coarse_step}"
            )
        if self.min_seeds < 1:
            raise ValueError(f"min_seeds: expected a positive count, got {self.min_seeds}")


def box_seeds(scoremap: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """``(box x0,y0,x1,y1, seeds (N, 2) as row, col)``: largest-contour box at ``tau`` and its edge pixels."""
    box = boxes_from_map(scoremap, tau, multi_contour=False, convention="inclusive")
    if len(box) == 0:
        return np.zeros(4, np.int64), np.zeros((0, 2), np.int64)
    x0, y0, x1, y1 = box[0]
    quantized = quantize(scoremap)
    foreground = quantized > quantized_thresholds(int(quantized.max()), np.array([tau]))[0]
    edges = np.zeros_like(foreground)
    edges[[y0, y1], x0 : x1 + 1] = True
    edges[y0 : y1 + 1, [x0, x1]] = True
    return box[0], np.argwhere(foreground & edges)


def contrast(features: Tensor, seeds: np.ndarray, image_size: tuple[int, int]) -> float:
    """Variance of the seeds' mean cosine-similarity map over the cells of ``features`` (C, h, w)."""
    channels, height, width = features.shape
    rows = torch.as_tensor(seeds[:, 0] * height // image_size[0])
    cols = torch.as_tensor(seeds[:, 1] * width // image_size[1])
    cells = F.normalize(features.flatten(1), dim=0)  # (C, h·w), unit columns
    seed_vectors = cells[:, rows * width + cols]  # (C, N)
    similarity = (seed_vectors.T @ cells).mean(dim=0)  # (h·w,)
    return float(similarity.var(unbiased=False))


def select_threshold(
    scoremap: np.ndarray, features: Tensor, config: TwoStageConfig = TwoStageConfig()
) -> float:
    """The τ of lowest contrast for one map (H, W) in [0, 1] and its image's last feature map (C, h, w)."""

    def best(candidates: np.ndarray) -> tuple[float, float]:
        scored = [(np.inf, 0.0)]
        for tau in candidates:
            _, seeds = box_seeds(scoremap, float(tau))
            if len(seeds) >= config.min_seeds:
                scored.append((contrast(features, seeds, scoremap.shape), float(tau)))
        return min(scored, key=lambda pair: pair[0])

    coarse = np.arange(0.0, 1.0, config.coarse_step)
    _, tau = best(coarse)
    fine = np.arange(tau - config.coarse_step, tau + config.coarse_step + 1e-9, config.fine_step)
    return best(np.round(fine[(fine >= 0) & (fine < 1)], 6))[1]


def oracle_comparison(
    maps: Tensor, features: Tensor, gt_boxes: list[Tensor], config: TwoStageConfig = TwoStageConfig()
) -> dict[str, np.ndarray]:
    """Per image: IoU and τ of the two-stage box, of the oracle τ (best IoU on the fine grid), and the IoU at
    every τ of that grid (``grid_iou`` (B, T) against ``grid`` (T,), for fixed-τ baselines).

    ``maps`` (B, H, W) normalised, ``features`` (B, C, h, w), ``gt_boxes`` B arrays (N_i, 4) ``x0,y0,x1,y1``;
    an IoU is the best over an image's ground-truth boxes.
    """
    grid = np.round(np.arange(0.0, 1.0, config.fine_step), 6)
    out: dict[str, list] = {"two_stage_iou": [], "two_stage_tau": [], "grid_iou": []}
    for scoremap, feature, gt in zip(maps.cpu().numpy(), features.detach().cpu(), gt_boxes, strict=True):
        gt = np.asarray(gt, dtype=np.int64).reshape(-1, 4)
        out["grid_iou"].append([float(iou_matrix(box_seeds(scoremap, tau)[0], gt).max()) for tau in grid])
        tau = select_threshold(scoremap, feature, config)
        out["two_stage_iou"].append(float(iou_matrix(box_seeds(scoremap, tau)[0], gt).max()))
        out["two_stage_tau"].append(tau)
    result = {name: np.asarray(values, dtype=np.float64) for name, values in out.items()}
    result["grid"] = grid
    result["oracle_iou"] = result["grid_iou"].max(axis=1)
    result["oracle_tau"] = grid[result["grid_iou"].argmax(axis=1)]
    return result
