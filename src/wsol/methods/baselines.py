"""Trivial localization baselines that need no training (``wsol evaluate --baseline NAME``).

Every real-data table needs them (Choe et al., "Evaluating Weakly Supervised Object Localization Methods
Right", CVPR 2020, arXiv 2001.07437, report a centre-Gaussian baseline; Belharbi et al., min-max entropy,
arXiv 1907.12934, show that a map that is foreground everywhere scores a high F1⁺):

* ``all_ones``: the constant map 1, foreground everywhere: F1⁺ = 2·|object| / (|object| + |image|) at
  every τ, F1⁻ = 0, PxAP = the foreground fraction — why F1⁺ alone misleads.
* ``center``: a centred Gaussian ``exp(−((x − W/2)² / (2(σW)²) + (y − H/2)² / (2(σH)²)))`` with σ = 1/4 of
  each side. Its level sets are centred ellipses of the image's proportions, so every τ-swept metric
  (PxAP, MaxBoxAcc) does not depend on σ; σ only sets the fixed-threshold F1 (τ = 0.5: an ellipse with
  semi-axes 0.29 W and 0.29 H).

Maps are in [0, 1] at the input resolution; they are evaluated without min-max normalisation (a constant map
would otherwise be zeroed). The baselines have no classifier: classification metrics are left empty.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

CENTER_SIGMA = 0.25


def all_ones(images: Tensor) -> Tensor:
    """(B, H, W) maps of ones for (B, C, H, W) images."""
    return images.new_ones(images.shape[0], *images.shape[-2:])


def center(images: Tensor, sigma: float = CENTER_SIGMA) -> Tensor:
    """(B, H, W) centred Gaussians, σ = ``sigma`` × each side, pixel centres at ``i + 0.5``."""
    height, width = images.shape[-2:]
    ys = (torch.arange(height, dtype=torch.float64) + 0.5 - height / 2) / (sigma * height)
    xs = (torch.arange(width, dtype=torch.float64) + 0.5 - width / 2) / (sigma * width)
    gaussian = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)).to(images.dtype)
    return gaussian.expand(images.shape[0], height, width).to(images.device)


BASELINES: dict[str, Callable[[Tensor], Tensor]] = {"all_ones": all_ones, "center": center}
"""Name → ``maps = baseline(images)``."""
