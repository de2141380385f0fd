"""Array inputs of the evaluation layer: numpy arrays, or torch tensors converted without importing torch.

The evaluation layer computes in numpy and numba, so that scoring ``.npy`` maps never loads torch. A tensor
can only exist if its caller imported torch, so ``torch`` is looked up in ``sys.modules``, not imported.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

ArrayLike = Any
"""A numpy array, a torch tensor on any device, or a nested sequence of numbers."""


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (False without importing torch when torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def to_numpy(value: ArrayLike) -> np.ndarray:
    """``value`` as a numpy array on the host (tensors detached; bfloat16 widened to float32)."""
    if isinstance(value, np.ndarray):
        return value
    if is_tensor(value):
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(value)
