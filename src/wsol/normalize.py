"""The one min-max normaliser of score maps, shared by every layer (CAM extractors, training methods, the
evaluator), for numpy arrays and torch tensors alike.

Rule: every map (the last ``dims`` axes) becomes ``(m - min) / (max - min)``, which lies in [0, 1]; a
*degenerate* map — constant (``max == min``) or holding a NaN or an infinite value — becomes all zeros. This
is wsolevaluation's rule (``normalize_scoremap``: NaN or constant -> zeros; Choe et al., CVPR 2020, arXiv
2001.07437) extended to ±inf, whose maps it turns into NaN. The arithmetic stays in the input's dtype with no
epsilon, so a map with a tiny positive span still reaches exactly 0 and 1; on tensors, gradients flow through
the valid maps only (degenerate maps get zero gradients, never NaN). The reference's own quirk-for-quirk
version, which the ``parity="wsolevaluation"`` evaluator keeps, is ``wsol.evaluation.parity``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

MapsT = TypeVar("MapsT", "np.ndarray", "Tensor")


def degenerate_maps(maps: MapsT, dims: int = 2) -> MapsT:
    """Bool over the leading axes: which maps (last ``dims`` axes) are constant or not all finite."""
    _, span = _low_span(_flat(maps, dims))
    return ~_valid(span)[..., 0]


def minmax_normalize(maps: MapsT, dims: int = 2) -> MapsT:
    """``(m - min) / (max - min)`` of every map over its last ``dims`` axes; degenerate maps become zeros
    (module docstring). Same type and shape as ``maps``, and its dtype if floating point."""
    flat = _flat(maps, dims)
    low, span = _low_span(flat)
    valid = _valid(span)
    if isinstance(maps, np.ndarray):
        dtype = np.result_type(flat.dtype, np.float32)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            normalized = np.where(valid, (flat - low) / np.where(valid, span, 1), 0).astype(dtype)
        return normalized.reshape(maps.shape)
    import torch

    safe = torch.where(valid, span, torch.ones_like(span))
    return torch.where(valid, (flat - low) / safe, torch.zeros_like(flat)).reshape(maps.shape)


def _flat(maps: MapsT, dims: int) -> MapsT:
    if dims < 1 or dims > maps.ndim:
        raise ValueError(f"minmax_normalize: dims must be in [1, {maps.ndim}], got {dims}")
    if any(side == 0 for side in maps.shape[maps.ndim - dims :]):
        raise ValueError(f"minmax_normalize: empty maps of shape {tuple(maps.shape)}")
    return maps.reshape(*maps.shape[: maps.ndim - dims], -1)


def _low_span(flat: MapsT) -> tuple[MapsT, MapsT]:
    """Per-map minimum and max - min (NaN when the map holds a NaN or both infinities)."""
    if isinstance(flat, np.ndarray):
        low = flat.min(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", over="ignore"):
            return low, flat.max(axis=-1, keepdims=True) - low
    low = flat.amin(-1, keepdim=True)
    return low, flat.amax(-1, keepdim=True) - low


def _valid(span: MapsT) -> MapsT:
    if isinstance(span, np.ndarray):
        return np.isfinite(span) & (span > 0)
    return span.isfinite() & (span > 0)
