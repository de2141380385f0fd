"""The weight-map paper's box rule and early-stopping score S (Shaharabany & Wolf, §3 "Setting the bounding
box", Eq. 5-6; Shaharabany & Wolf, arXiv 2111.14131).

1. Min-max normalise the map and rescale it to 8 bits. (The authors' code passes the map through matplotlib's
   ``cubehelix`` colormap and converts it to grey; that grey is linear in the map, ≈ ``round(255·m)``
   (as their released evaluation does), which is what we compute, without matplotlib.)
2. τ = max/10 (Eq. 5): ``cv2.threshold(grey, int(0.1·max), THRESH_TOZERO)`` keeps the grey value of pixels
   strictly above ``int(0.1·max)`` and zeroes the rest, giving M̂.
3. Contours of M̂ (``RETR_TREE``), the one of largest ``cv2.contourArea``, its bounding rectangle
   ``[x, y, x + w, y + h]``. No contour: box ``[0, 0, 1, 1]`` and S = 0, as the authors' code.
4. S (Eq. 6) = mass of M̂ inside the box / total mass of M̂. As in the authors' code the box's pixels are the
   bounding rectangle ``M̂[y:y+h, x:x+w]`` (Eq. 6's inclusive sum up to ``x + w`` would add a row and a column
   outside the rectangle). The checkpoint with the largest mean S over a validation set is kept.
5. Full-frame guard (our addition, :func:`weightmap_s_score`). The paper keeps "an epoch in which the bounding
   box still contains most of the weights of the mask M̂" (§3 "Early stopping"), assuming the box is a proper
   part of the image. When the box is the whole map, Eq. 6's numerator *is* its denominator, so S = 1 whatever
   the map: a near-uniform map (an untrained g, or a map that never drops below max/10 anywhere) scores the
   maximum and max-S selection keeps it. Measured (docs/weight_map.md): with the pretrained Lite0, every
   validation map of BUSI's saved epochs and 89-100 % of the synthetic benchmark's had a whole-frame box, and
   the paper's S kept epoch 0 in every seed. We therefore score such a map 0, as the authors' code scores a
   map without any contour: it localizes nothing. A box is "whole-frame" when it covers at least
   ``max_box_fraction`` of the map (default :data:`FULL_FRAME`: exactly the whole map, the only box for which
   S = 1 whatever the map); ``max_box_fraction=None`` gives the paper-exact S.
"""

from __future__ import annotations

import cv2
import numpy as np

from wsol.evaluation.arrays import ArrayLike, to_numpy

TAU_FRACTION = 0.1
"""Eq. 5: τ = max(M) / 10."""
FULL_FRAME = 1.0
"""Default ``max_box_fraction``: only a box that is the whole map is vacuous (module docstring, step 5)."""


def box_from_map_weightmap(weight_map: ArrayLike) -> tuple[tuple[int, int, int, int], float]:
    """Box ``(x0, y0, x1, y1)`` (x1 = x + w, exclusive) and score S for one (H, W) weight map."""
    values = to_numpy(weight_map).astype(np.float64)
    if values.ndim != 2:
        raise ValueError(f"weight_map: expected a 2-D (H, W) map, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("weight_map: contains NaN or infinite values")
    span = values.max() - values.min()
    normalised = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    grey = np.rint(normalised * 255).astype(np.uint8)
    _, kept = cv2.threshold(grey, int(TAU_FRACTION * float(grey.max())), 255, cv2.THRESH_TOZERO)
    contours = cv2.findContours(kept, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return (0, 0, 1, 1), 0.0
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    mass = kept.sum(dtype=np.int64)
    score = float(kept[y : y + h, x : x + w].sum(dtype=np.int64) / mass)
    return (x, y, x + w, y + h), score


def box_fraction(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> float:
    """Area of an exclusive-end box ``(x0, y0, x1, y1)`` over the area of an (H, W) map."""
    return (box[2] - box[0]) * (box[3] - box[1]) / (shape[0] * shape[1])


def weightmap_s_score(weight_map: ArrayLike, max_box_fraction: float | None = FULL_FRAME) -> float:
    """S of Eq. 6, or 0 when the box covers at least ``max_box_fraction`` of the map (the full-frame guard,
    module docstring step 5); ``None``: the paper-exact S."""
    if max_box_fraction is not None and not 0 < max_box_fraction <= 1:
        raise ValueError(f"max_box_fraction: expected None or a fraction in (0, 1], got {max_box_fraction}")
    box, score = box_from_map_weightmap(weight_map)
    if max_box_fraction is not None and box_fraction(box, np.shape(weight_map)) >= max_box_fraction:
        return 0.0
    return score


def mean_weightmap_score(weight_maps: ArrayLike, max_box_fraction: float | None = FULL_FRAME) -> float:
    """Mean S (:func:`weightmap_s_score`) over a batch (B, H, W) of weight maps: the early-stopping criterion
    of the paper (§3), with the full-frame guard unless ``max_box_fraction=None``."""
    if weight_maps.ndim != 3:
        raise ValueError(f"weight_maps: expected (B, H, W), got {tuple(weight_maps.shape)}")
    if weight_maps.shape[0] == 0:
        raise ValueError("weight_maps: empty batch")
    return float(np.mean([weightmap_s_score(m, max_box_fraction) for m in weight_maps]))
