"""XGrad-CAM (Fu et al., BMVC 2020, Eq. 13): w_k = Σ_ij g_k(i,j) A_k(i,j) / (Σ_ij A_k(i,j) + ε).

ε = 1e-7 as in the authors' and pytorch-grad-cam's code (guards all-zero channels); M = ReLU(Σ_k w_k A_k).
"""

from __future__ import annotations

from torch import Tensor

from wsol.cams.base import ChannelGradientCAM

EPSILON = 1e-7


class XGradCAM(ChannelGradientCAM):
    """XGrad-CAM: activation-weighted average of the gradients."""

    def weights_from_gradients(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return (gradients * activations).sum((2, 3)) / (activations.sum((2, 3)) + EPSILON)
