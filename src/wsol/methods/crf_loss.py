"""Differentiable dense-CRF loss on the CPU (Tang et al., "On Regularized Losses for Weakly-supervised CNN
Segmentation", ECCV 2018, arXiv 1803.09569, Eq. 5), as used by F-CAM (Belharbi et al., WACV 2022, arXiv
2109.07069, Eq. 3 R(S, X)).

For soft segmentations P (B, K, H, W) and images I (B, 3, H, W) in [0, 255]::

    loss = −(λ / B) Σ_b Σ_k P_kᵀ W P_k,   W_ij = exp(−‖p_i − p_j‖² / 2σ_xy² − ‖I_i − I_j‖² / 2σ_rgb²)

with p pixel coordinates (W includes i = j). The gradient is −(2λ / B) W P_k (W is symmetric). The authors
filter with a permutohedral lattice; here W P is computed exactly, in row blocks of ``chunk`` pixels (memory
``chunk × HW``), which is affordable at the sizes this library trains on and leaves no approximation. With
``scale`` s < 1, the image is resized (nearest) and P (bilinear) by s and σ_xy is multiplied by s, as the
authors do, which divides the cost by s⁴. See ``benchmarks/bench_crf_loss.py`` for its cost per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class CRFConfig:
    """Kernel widths (σ_rgb in 0–255 intensity, σ_xy in input pixels), resize factor and block size."""

    sigma_rgb: float = 15.0
    sigma_xy: float = 100.0
    scale: float = 1.0
    chunk: int = 2048

    def __post_init__(self) -> None:
        if self.sigma_rgb <= 0 or self.sigma_xy <= 0:
            raise ValueError(f"crf: sigmas must be > 0, got {self.sigma_rgb} and {self.sigma_xy}")
        if not 0 < self.scale <= 1 or self.chunk < 1:
            raise ValueError(f"crf: expected 0 < scale <= 1 and chunk >= 1, got {self.scale}, {self.chunk}")


def _features(image: Tensor, sigma_rgb: float, sigma_xy: float) -> Tensor:
    """(HW, 5) rows ``(y/σ_xy, x/σ_xy, r/σ_rgb, g/σ_rgb, b/σ_rgb)`` of one image (3, H, W)."""
    height, width = image.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=image.dtype, device=image.device),
        torch.arange(width, dtype=image.dtype, device=image.device),
        indexing="ij",
    )
    position = torch.stack([ys, xs]).flatten(1) / sigma_xy
    return torch.cat([position, image.flatten(1) / sigma_rgb]).T


@torch.no_grad()
def bilateral_filter(images: Tensor, values: Tensor, sigma_rgb: float, sigma_xy: float, chunk: int) -> Tensor:
    """W V per image: ``values`` (B, K, H, W) filtered with the bilateral Gaussian affinity of ``images``."""
    out = torch.empty_like(values)
    for b in range(images.shape[0]):
        feats = _features(images[b].to(values.dtype), sigma_rgb, sigma_xy)
        flat = values[b].flatten(1).T  # (HW, K)
        rows = []
        for start in range(0, feats.shape[0], chunk):
            block = feats[start : start + chunk]
            squared = torch.cdist(block, feats).square().clamp_(min=0.0)
            rows.append(torch.exp(-0.5 * squared) @ flat)
        out[b] = torch.cat(rows).T.reshape(values.shape[1:])
    return out


class _DenseCRFEnergy(torch.autograd.Function):
    """−Σ_b Σ_k P_kᵀ W P_k with the analytic gradient −2 W P (W fixed by the images)."""

    @staticmethod
    def forward(ctx: Any, probs: Tensor, images: Tensor, config: CRFConfig) -> Tensor:
        filtered = bilateral_filter(images, probs.detach(), config.sigma_rgb, config.sigma_xy, config.chunk)
        ctx.save_for_backward(filtered)
        return -(probs.detach() * filtered).sum()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (filtered,) = ctx.saved_tensors
        return -2.0 * grad * filtered, None, None


def dense_crf_loss(probs: Tensor, images: Tensor, config: CRFConfig = CRFConfig()) -> Tensor:
    """−(1/B) Σ_k P_kᵀ W P_k for ``probs`` (B, K, H, W) and raw ``images`` (B, 3, H, W) in [0, 255].

    Multiply by the weight λ outside (F-CAM: 2e-9 at 224 px). Images carry no gradient.
    """
    if probs.ndim != 4 or images.ndim != 4 or images.shape[0] != probs.shape[0] or images.shape[1] != 3:
        raise ValueError(
            f"dense_crf_loss: expected probs (B, K, H, W) and images (B, 3, H, W), got "
            f"{tuple(probs.shape)} and {tuple(images.shape)}"
        )
    images = images.detach()
    sigma_xy = config.sigma_xy
    if config.scale < 1:
        size = [max(1, round(side * config.scale)) for side in probs.shape[-2:]]
        images = F.interpolate(images, size=size, mode="nearest")
        probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        sigma_xy = sigma_xy * config.scale
    scaled = CRFConfig(config.sigma_rgb, sigma_xy, 1.0, config.chunk)
    return _DenseCRFEnergy.apply(probs, images, scaled) / probs.shape[0]


__all__ = ["CRFConfig", "bilateral_filter", "dense_crf_loss"]
