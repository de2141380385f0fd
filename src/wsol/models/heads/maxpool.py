"""CAM-Max (Oquab et al., CVPR 2015): 1×1 conv to class maps, global max pooling."""

from __future__ import annotations

from torch import Tensor

from wsol.models.heads.base import ConvPoolingHead


class MaxPoolHead(ConvPoolingHead):
    """``s_k = max_ij A_k(i, j)``; the gradient reaches the arg-max location only."""

    def pool(self, class_maps: Tensor) -> Tensor:
        return class_maps.flatten(2).amax(dim=2)
