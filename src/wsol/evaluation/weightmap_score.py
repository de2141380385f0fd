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
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

TAU_FRACTION = 0.1
"""Eq. 5: τ = max(M) / 10."""


def box_from_map_weightmap(weight_map: Tensor | np.ndarray) -> tuple[tuple[int, int, int, int], float]:
    """Box ``(x0, y0, x1, y1)`` (x1 = x + w, exclusive) and score S for one (H, W) weight map."""
    values = (
        weight_map.detach().to("cpu", torch.float64).numpy() if isinstance(weight_map, Tensor) else weight_map
    )
    values = np.asarray(values, dtype=np.float64)
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


def mean_weightmap_score(weight_maps: Tensor) -> float:
    """Mean S over a batch (B, H, W) of weight maps: the early-stopping criterion of the paper (§3)."""
    if weight_maps.ndim != 3:
        raise ValueError(f"weight_maps: expected (B, H, W), got {tuple(weight_maps.shape)}")
    if weight_maps.shape[0] == 0:
        raise ValueError("weight_maps: empty batch")
    return float(np.mean([box_from_map_weightmap(m)[1] for m in weight_maps]))
