"""Grad-CAM++ (Chattopadhay et al., WACV 2018, Eq. 19 and its closed form).

α_k(i,j) = g² / (2 g² + Σ_ab A_k(a,b) g³) with g = ∂S_c/∂A_k(i,j), α = 0 where the denominator is 0;
w_k = Σ_ij α_k(i,j) ReLU(g_k(i,j)); M = ReLU(Σ_k w_k A_k).

The paper derives α with Y_c = exp(S_c); the exponential cancels in α and leaves a positive per-image factor
exp(S_c) on w, which we drop (as pytorch-grad-cam and torch-cam do): maps differ from the paper's by that
factor only, i.e. not at all after normalisation. Unlike torch-cam v0.2 (copied in fcam-wsol) α really is
divided by its denominator (that version's in-place division on a masked copy left α = g²).
"""

from __future__ import annotations

import torch
from torch import Tensor

from wsol.cams.base import ChannelGradientCAM


def gradcampp_weights(activations: Tensor, grad1: Tensor, grad2: Tensor, grad3: Tensor) -> Tensor:
    """w_k = Σ_ij α ReLU(g) from the first three gradient powers (averaged ones for Smooth Grad-CAM++)."""
    denominator = 2 * grad2 + activations.sum((2, 3), keepdim=True) * grad3
    nonzero = denominator != 0
    safe = torch.where(nonzero, denominator, torch.ones_like(denominator))
    alpha = torch.where(nonzero, grad2 / safe, torch.zeros_like(denominator))
    return (alpha * grad1.clamp_min(0)).sum((2, 3))


class GradCAMPlusPlus(ChannelGradientCAM):
    """Grad-CAM++: pixel-weighted positive gradients."""

    def weights_from_gradients(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcampp_weights(activations, gradients, gradients.pow(2), gradients.pow(3))
