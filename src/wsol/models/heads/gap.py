"""CAM-Avg (Zhou et al., CVPR 2016, in its fully convolutional form): 1×1 conv to class maps, spatial mean."""

from __future__ import annotations

from torch import Tensor

from wsol.models.heads.base import ConvPoolingHead


class GAPHead(ConvPoolingHead):
    """``s_k = mean_ij A_k(i, j)`` with ``A = Conv1x1(F)``."""

    def pool(self, class_maps: Tensor) -> Tensor:
        return class_maps.mean(dim=(2, 3))
