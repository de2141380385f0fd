"""WILDCAT pooling (Durand et al., CVPR 2017), with the min-max paper's dropout over the sorted maps.

Head: 1×1 conv to ``K × M`` modality maps, class-wise average over the M modalities (the class map), then
per map with its n = h·w values sorted in decreasing order z_(1) ≥ … ≥ z_(n):

    s = ( mean(z_(1..k⁺)) + α · mean(z_(n−k⁻+1..n)) ) / 2      if k⁻ > 0 and α ≠ 0
    s = mean(z_(1..k⁺))                                          otherwise

as in durandtibo/wildcat.pytorch (``WildcatPool2dFunction``; the paper writes the sum, the code halves it).
k ∈ (0, 1) is a fraction of the n regions, ``round(k·n)`` with Python's rounding (half to even) as in that
code, raised to 1 so that a small map never selects zero regions (the reference code would divide by zero); an
integer k ≥ 1 is a count, clipped to n. ``kmin=None`` means kmin = kmax (Durand's default).

``dropout`` (arXiv 1907.12934: "Pretrained resnet101 ... dropout over the final map of the pooling
function"; the min-max reference code ``deepmil/decision_pooling.py``): in training, standard dropout
(scaled by 1/(1−p)) on the sorted values before the top/bottom means; the class maps themselves are not
dropped. That reference code also writes ``scores.add(...)`` without assigning the result, which silently
drops the k⁻ term; here the k⁻ term is applied (its configs use α = 0, where both agree).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from wsol.models.heads.base import ConvPoolingHead


def regions_count(k: float, n: int, name: str) -> int:
    """Regions selected by ``k`` among ``n``: a fraction in (0, 1) or a count ≥ 1; 0 disables."""
    if k < 0 or not math.isfinite(k):
        raise ValueError(f"WildcatHead: {name} must be >= 0 (a fraction in (0, 1) or a count), got {k}")
    if k == 0:
        return 0
    if k < 1:
        return max(1, round(k * n))
    if k != int(k):
        raise ValueError(f"WildcatHead: {name} >= 1 is a number of regions and must be an integer, got {k}")
    return min(int(k), n)


class WildcatHead(ConvPoolingHead):
    """WILDCAT: multi-map class-wise pooling + top-k⁺ / bottom-k⁻ spatial pooling (see the module docstring).

    Defaults follow the F-CAM framework's WILDCAT baseline (Belharbi et al., F-CAM, WACV 2022,
    arXiv 2109.07069): modalities 5, kmax 0.5, kmin 0.1, α 0.6, dropout 0. The min-max paper's configs:
    kmax = kmin = 0.09, α 0, modalities 5, dropout 0.75 (GlaS) / 0.85 (CUB, OxF).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        modalities: int = 5,
        kmax: float = 0.5,
        kmin: float | None = 0.1,
        alpha: float = 0.6,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels, num_classes, modalities)
        kmin = kmax if kmin is None else kmin
        if not kmax > 0:
            raise ValueError(f"WildcatHead: kmax must be > 0, got {kmax}")
        regions_count(kmax, 1, "kmax")
        regions_count(kmin, 1, "kmin")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"WildcatHead: dropout must be in [0, 1), got {dropout}")
        if not math.isfinite(alpha):
            raise ValueError(f"WildcatHead: alpha must be finite, got {alpha}")
        self.kmax = kmax
        self.kmin = kmin
        self.alpha = float(alpha)
        self.dropout = float(dropout)

    def pool(self, class_maps: Tensor) -> Tensor:
        flat = class_maps.flatten(2)
        n = flat.shape[2]
        kmax = regions_count(self.kmax, n, "kmax")
        kmin = regions_count(self.kmin, n, "kmin")
        ordered = flat.sort(dim=2, descending=True).values
        if self.dropout > 0:
            ordered = F.dropout(ordered, self.dropout, self.training)
        scores = ordered[..., :kmax].mean(dim=2)
        if kmin > 0 and self.alpha != 0:
            scores = (scores + self.alpha * ordered[..., n - kmin :].mean(dim=2)) / 2
        return scores

    def extra_repr(self) -> str:
        return (
            f"modalities={self.modalities}, kmax={self.kmax}, kmin={self.kmin}, alpha={self.alpha}, "
            f"dropout={self.dropout}"
        )
