"""Pooling-head registry: ``build_head(name, in_channels, num_classes, **options) -> PoolingHead``.

``HEADS`` lists the names without importing torch; classes load on lookup (``wsol.registry``).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from wsol.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from wsol.models.heads.base import PoolingHead

HEADS: Registry[type[PoolingHead]] = Registry(
    "head",
    {
        "gap": "wsol.models.heads.gap:GAPHead",
        "max": "wsol.models.heads.maxpool:MaxPoolHead",
        "lse": "wsol.models.heads.lse:LSEHead",
        "wildcat": "wsol.models.heads.wildcat:WildcatHead",
        "mil": "wsol.models.heads.mil:MILHead",
        "wgap": "wsol.models.heads.wgap:WGAPHead",
        "prm": "wsol.models.heads.prm:PRMHead",
        "softmax_wgap": "wsol.models.heads.softmax_wgap:SoftmaxWGAPHead",
    },
)


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


_EXPORTS = {
    "ConvPoolingHead": "wsol.models.heads.base",
    "HeadOutput": "wsol.models.heads.base",
    "PoolingHead": "wsol.models.heads.base",
    "GAPHead": "wsol.models.heads.gap",
    "LSEHead": "wsol.models.heads.lse",
    "MILHead": "wsol.models.heads.mil",
    "MaxPoolHead": "wsol.models.heads.maxpool",
    "PRMHead": "wsol.models.heads.prm",
    "SoftmaxWGAPHead": "wsol.models.heads.softmax_wgap",
    "WGAPHead": "wsol.models.heads.wgap",
    "WildcatHead": "wsol.models.heads.wildcat",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["HEADS", "build_head", *sorted(_EXPORTS)]
