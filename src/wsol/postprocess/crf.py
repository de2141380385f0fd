"""Fully connected CRF refinement of foreground masks (Krähenbühl & Koltun 2011), as min-max entropy's
post-processing (Belharbi et al., arXiv 1907.12934, §4 / App. B; parameters from the reference code's
``crf_params.py``).

The unary term is −log of the two-class distribution [1 − p, p] built from the continuous map p; the pairwise
terms are a Gaussian (smoothness) kernel and a bilateral (appearance) kernel, both with diagonal kernels and
symmetric normalisation. Needs the optional ``pydensecrf2`` package (``pip install wsol[crf]``; import name
``pydensecrf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from wsol.data.transforms import denormalize

__all__ = ["CRF_PRESETS", "CRFParams", "refine_batch", "refine_mask", "refine_masks"]


@dataclass(frozen=True)
class CRFParams:
    """Dense-CRF settings: mean-field iterations, Gaussian/bilateral kernel widths, compatibilities."""

    iterations: int
    gaussian_sxy: tuple[float, float]
    bilateral_sxy: tuple[float, float]
    bilateral_srgb: tuple[float, float, float]
    gaussian_compat: float = 3.0
    bilateral_compat: float = 10.0


CRF_PRESETS: dict[str, CRFParams] = {
    # Reference crf_params.py: GlaS (histology) and "cub" (used for CUB5, CUB and Oxford flowers).
    "glas": CRFParams(iterations=2, gaussian_sxy=(3, 3), bilateral_sxy=(13, 13), bilateral_srgb=(3, 3, 3)),
    "natural": CRFParams(
        iterations=5, gaussian_sxy=(5, 5), bilateral_sxy=(19, 19), bilateral_srgb=(11, 11, 11)
    ),
}


def _densecrf() -> ModuleType:
    """The ``pydensecrf.densecrf`` extension module (optional dependency)."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "dense-CRF refinement needs the optional package pydensecrf2: pip install 'wsol[crf]'"
        ) from error
    return dcrf


def _check_pair(image: NDArray[np.uint8], prob: NDArray[np.floating]) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    if prob.shape != image.shape[:2]:
        raise ValueError(f"prob must have the image's (H, W) = {image.shape[:2]}, got {prob.shape}")
    if not np.all(np.isfinite(prob)) or prob.min() < 0 or prob.max() > 1:
        raise ValueError("prob must hold finite foreground probabilities in [0, 1]")


def refine_mask(
    image: NDArray[np.uint8],
    prob: NDArray[np.floating],
    params: CRFParams = CRF_PRESETS["natural"],
    eps: float = 1e-5,
) -> NDArray[np.bool_]:
    """Refine a foreground probability map ``prob`` (H, W) on ``image`` (H, W, 3, uint8) -> (H, W) bool.

    Returns the labelling that maximises the mean-field marginals after ``params.iterations`` iterations.
    """
    image = np.asarray(image)
    prob = np.asarray(prob, dtype=np.float64)
    _check_pair(image, prob)
    dcrf = _densecrf()
    height, width = prob.shape
    clipped = np.clip(prob, eps, 1.0 - eps)
    unary = -np.log(np.stack([1.0 - clipped, clipped]).reshape(2, -1))
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(
        sxy=params.gaussian_sxy,
        compat=params.gaussian_compat,
        kernel=dcrf.DIAG_KERNEL,
        normalization=dcrf.NORMALIZE_SYMMETRIC,
    )
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy,
        srgb=params.bilateral_srgb,
        rgbim=np.ascontiguousarray(image),
        compat=params.bilateral_compat,
        kernel=dcrf.DIAG_KERNEL,
        normalization=dcrf.NORMALIZE_SYMMETRIC,
    )
    marginals = np.asarray(crf.inference(params.iterations)).reshape(2, height, width)
    return marginals[1] > marginals[0]


def refine_masks(
    images: NDArray[np.uint8], probs: NDArray[np.floating], params: CRFParams = CRF_PRESETS["natural"]
) -> NDArray[np.bool_]:
    """:func:`refine_mask` per image: ``images`` (B, H, W, 3) uint8, ``probs`` (B, H, W) -> bool (B, H, W)."""
    images, probs = np.asarray(images), np.asarray(probs)
    if images.ndim != 4 or probs.ndim != 3 or images.shape[0] != probs.shape[0]:
        raise ValueError(
            f"expected images (B, H, W, 3) and probs (B, H, W), got {images.shape} and {probs.shape}"
        )
    if images.shape[0] == 0:
        return np.zeros(probs.shape, dtype=bool)
    return np.stack([refine_mask(image, prob, params) for image, prob in zip(images, probs, strict=True)])


def refine_batch(
    images: Tensor,
    maps: Tensor,
    params: CRFParams = CRF_PRESETS["natural"],
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> Tensor:
    """CRF masks for a model batch: normalised ``images`` (B, 3, H, W) and ``Prediction.maps`` (B, H, W).

    Images are de-normalised with ``mean``/``std`` (the dataset transform's) and quantised to uint8 as the
    reference does before the bilateral kernel. Returns a bool tensor (B, H, W) on the maps' device.
    """
    if images.ndim != 4 or images.shape[1] != 3 or maps.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(
            "expected images (B, 3, H, W) and maps (B, H, W), "
            f"got {tuple(images.shape)} and {tuple(maps.shape)}"
        )
    pixels = denormalize(images.detach().float().cpu(), mean, std).mul(255).round().to(torch.uint8)
    refined = refine_masks(
        pixels.permute(0, 2, 3, 1).numpy(), maps.detach().float().cpu().clamp(0, 1).numpy(), params
    )
    return torch.from_numpy(refined).to(maps.device)
