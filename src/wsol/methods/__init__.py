"""Training-time WSOL methods behind the :class:`~wsol.methods.base.WSOLMethod` protocol.

The registry maps a method name to ``module:Class``; modules are imported on first use so that a method's
optional dependencies do not burden the others. Adding a method = one new file + one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod

METHODS: dict[str, str] = {
    "acol": "wsol.methods.acol:ACoL",
    "adl": "wsol.methods.adl:ADL",
    "amh": "wsol.methods.amh:AMH",
    "ass": "wsol.methods.ass:ASS",
    "cam": "wsol.methods.cam_baseline:PoolingHeadMethod",
    "cutmix": "wsol.methods.cutmix:CutMix",
    "has": "wsol.methods.has:HideAndSeek",
    "minmax_entropy": "wsol.methods.minmax_entropy:MinMaxEntropy",
    "spg": "wsol.methods.spg:SPG",
    "unet_fullsup": "wsol.methods.unet_fullsup:UNetFullSup",
    "weight_map": "wsol.methods.weight_map:WeightMapMethod",
}


def method_class(name: str) -> type[WSOLMethod]:
    """The class registered under ``name``."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    module_name, _, class_name = METHODS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_method(name: str, num_classes: int, options: Mapping[str, Any] | None = None) -> WSOLMethod:
    """Instantiate method ``name`` with its keyword options (from the config's ``method`` section)."""
    return method_class(name)(num_classes=num_classes, **dict(options or {}))


__all__ = ["METHODS", "Batch", "LossOutput", "Prediction", "WSOLMethod", "build_method", "method_class"]
