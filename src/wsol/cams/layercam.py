"""LayerCAM (Jiang et al., IEEE TIP 2021, Eq. 5-6): M(i,j) = ReLU(Σ_k ReLU(g_k(i,j)) A_k(i,j)).

Element-wise weights, no spatial pooling, so shallow layers give fine maps. Several layers are fused by the
base class (``fuse="max"``, the paper's element-wise max); the paper's tanh(2·M/max M) rescaling of shallow
layers is not applied (we fuse min-max normalised maps instead when ``normalize`` is set).
"""

from __future__ import annotations

from torch import Tensor

from wsol.cams.base import GradientCAM


class LayerCAM(GradientCAM):
    """LayerCAM: positive gradients weight each activation location."""

    def combine(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return (gradients.clamp_min(0) * activations).sum(1)
