"""Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2): w_k = mean_ij ∂S_c/∂A_k(i,j); M = ReLU(Σ_k w_k A_k)."""

from __future__ import annotations

from torch import Tensor

from wsol.cams.base import ChannelGradientCAM


class GradCAM(ChannelGradientCAM):
    """Grad-CAM: channel weights are the spatially averaged gradients of the target score."""

    def weights_from_gradients(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradients.mean((2, 3))
