"""Pooling-head registry: ``build_head(name, in_channels, num_classes, **options) -> PoolingHead``."""

from __future__ import annotations

import inspect

from wsol.models.heads.base import ConvPoolingHead, HeadOutput, PoolingHead
from wsol.models.heads.gap import GAPHead
from wsol.models.heads.lse import LSEHead
from wsol.models.heads.maxpool import MaxPoolHead
from wsol.models.heads.mil import MILHead
from wsol.models.heads.prm import PRMHead
from wsol.models.heads.softmax_wgap import SoftmaxWGAPHead
from wsol.models.heads.wgap import WGAPHead
from wsol.models.heads.wildcat import WildcatHead

HEADS: dict[str, type[PoolingHead]] = {
    "gap": GAPHead,
    "max": MaxPoolHead,
    "lse": LSEHead,
    "wildcat": WildcatHead,
    "mil": MILHead,
    "wgap": WGAPHead,
    "prm": PRMHead,
    "softmax_wgap": SoftmaxWGAPHead,
}


def build_head(name: str, in_channels: int, num_classes: int, **options: object) -> PoolingHead:
    """Build pooling head ``name``; unknown names or options raise a ValueError listing what is accepted."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    cls = HEADS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "in_channels", "num_classes"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"head {name!r}: unknown option(s) {unknown}; accepted: {sorted(accepted) or 'none'}"
        )
    return cls(in_channels, num_classes, **options)


__all__ = [
    "HEADS",
    "ConvPoolingHead",
    "GAPHead",
    "HeadOutput",
    "LSEHead",
    "MILHead",
    "MaxPoolHead",
    "PRMHead",
    "PoolingHead",
    "WGAPHead",
    "WildcatHead",
    "build_head",
]
