"""Peak Response Maps' peak stimulation (Zhou et al., CVPR 2018, "Weakly Supervised Instance Segmentation
using Class Peak Response", peak stimulation).

1×1 conv to class response maps M_c; the peaks of M_c are the locations that are the maximum of their
``window × window`` neighbourhood (first maximum in raster order on ties, as ``max_pool2d`` indices give)
and, with the median filter of the authors' code, not below the map's median. The class score is the mean
response at the peaks, ``s_c = (1/N_c) Σ_k M_c(p_k)``, so gradients reach the peaks only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from wsol.models.heads.base import ConvPoolingHead


def peak_mask(class_maps: Tensor, window: int = 3, median_filter: bool = True) -> Tensor:
    """Boolean (B, K, h, w): local maxima in a ``window`` neighbourhood (and ≥ the median if filtered)."""
    batch, classes, height, width = class_maps.shape
    _, indices = F.max_pool2d(
        class_maps, kernel_size=window, stride=1, padding=window // 2, return_indices=True
    )
    positions = torch.arange(height * width, device=class_maps.device).view(1, 1, height, width)
    peaks = indices == positions
    if median_filter:
        median = class_maps.flatten(2).median(dim=2).values.view(batch, classes, 1, 1)
        peaks &= class_maps >= median
    return peaks


class PRMHead(ConvPoolingHead):
    """Class response maps + peak stimulation; ``window`` must be odd (3 in the paper's code)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int = 3,
        median_filter: bool = True,
        modalities: int = 1,
    ) -> None:
        super().__init__(in_channels, num_classes, modalities)
        if window < 1 or window % 2 == 0:
            raise ValueError(f"PRMHead: window must be an odd integer >= 1, got {window}")
        self.window = window
        self.median_filter = median_filter

    def pool(self, class_maps: Tensor) -> Tensor:
        peaks = peak_mask(class_maps.detach(), self.window, self.median_filter).to(class_maps.dtype)
        return (class_maps * peaks).flatten(2).sum(dim=2) / peaks.flatten(2).sum(dim=2)

    def extra_repr(self) -> str:
        return f"window={self.window}, median_filter={self.median_filter}"
