"""Training-time WSOL methods behind the :class:`~wsol.methods.base.WSOLMethod` protocol.

The registry maps a method name to ``module:Class``; modules are imported on first use so that a method's
optional dependencies do not burden the others. Adding a method = one new file + one line here. A package
installed by the user may add methods through the ``wsol.methods`` entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wsol.registry import lazy_exports

if TYPE_CHECKING:
    from wsol.methods.base import WSOLMethod

METHODS: dict[str, str] = {
    "acol": "wsol.methods.acol:ACoL",
    "adl": "wsol.methods.adl:ADL",
    "amh": "wsol.methods.amh:AMH",
    "ass": "wsol.methods.ass:ASS",
    "cam": "wsol.methods.cam_baseline:PoolingHeadMethod",
    "cutmix": "wsol.methods.cutmix:CutMix",
    "fcam": "wsol.methods.fcam:FCAM",
    "has": "wsol.methods.has:HideAndSeek",
    "minmax_entropy": "wsol.methods.minmax_entropy:MinMaxEntropy",
    "negev": "wsol.methods.negev:NEGEV",
    "spg": "wsol.methods.spg:SPG",
    "unet_fullsup": "wsol.methods.unet_fullsup:UNetFullSup",
    "weight_map": "wsol.methods.weight_map:WeightMapMethod",
}


ENTRY_POINT_GROUP = "wsol.methods"


def _entry_point(name: str) -> importlib.metadata.EntryPoint | None:
    return next(iter(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name)), None)


def is_registered(name: object) -> bool:
    """Whether ``name`` is in :data:`METHODS` or an installed ``wsol.methods`` entry point (no import)."""
    return isinstance(name, str) and (name in METHODS or _entry_point(name) is not None)


def method_class(name: str) -> type[WSOLMethod]:
    """The class registered under ``name`` (:data:`METHODS`, then the ``wsol.methods`` entry points)."""
    if name in METHODS:
        module_name, _, class_name = METHODS[name].partition(":")
        return getattr(importlib.import_module(module_name), class_name)
    entry = _entry_point(name)
    if entry is None:
        raise KeyError(
            f"unknown method {name!r}; available: {', '.join(sorted(METHODS))} "
            f"(or an installed {ENTRY_POINT_GROUP!r} entry point)"
        )
    return entry.load()


def build_method(name: str, num_classes: int, options: Mapping[str, Any] | None = None) -> WSOLMethod:
    """Instantiate method ``name`` with its keyword options (from the config's ``method`` section)."""
    return method_class(name)(num_classes=num_classes, **dict(options or {}))


__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(("Batch", "CAMSource", "LossOutput", "Prediction", "WSOLMethod"), "wsol.methods.base"),
)
__all__ = [
    "METHODS",
    "Batch",
    "CAMSource",
    "LossOutput",
    "Prediction",
    "WSOLMethod",
    "build_method",
    "is_registered",
    "method_class",
]
