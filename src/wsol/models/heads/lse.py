"""CAM-LSE (Pinheiro & Collobert, CVPR 2015; Sun et al. 2016): log-sum-exp pooling, a smooth max."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wsol.models.heads.base import ConvPoolingHead


class LSEHead(ConvPoolingHead):
    """``s_k = (1/r) log( (1/n) Σ_ij exp(r A_k(i, j)) )`` computed as ``(logsumexp(r A) − log n) / r``.

    r → 0 gives the mean, r → ∞ the max; the logsumexp form never overflows. Default r = 10
    (Belharbi's default in the F-CAM framework code; the paper's r is unconfirmed).
    """

    def __init__(self, in_channels: int, num_classes: int, r: float = 10.0, modalities: int = 1) -> None:
        super().__init__(in_channels, num_classes, modalities)
        if not r > 0 or not math.isfinite(r):
            raise ValueError(f"LSEHead: r must be a positive finite number, got {r}")
        self.r = float(r)

    def pool(self, class_maps: Tensor) -> Tensor:
        flat = class_maps.flatten(2)
        return (torch.logsumexp(self.r * flat, dim=2) - math.log(flat.shape[2])) / self.r

    def extra_repr(self) -> str:
        return f"r={self.r}"
