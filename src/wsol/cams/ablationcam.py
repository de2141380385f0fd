"""Ablation-CAM (Desai & Ramaswamy, WACV 2020, Eq. 3): w_k = (y_c − y_c^k) / y_c, M = ReLU(Σ_k w_k A_k).

y_c is the target score and y_c^k the score when channel k of the target layer is set to zero, ``batch_size``
ablations at a time. For those forwards the target layer is swapped for a stand-in that returns its cached,
ablated output, so the layer itself is not recomputed (when the target layer is the whole feature extractor,
only the head runs). Channels that are already zero everywhere cannot change the output and get weight 0
without a forward. As in the paper the drop is divided by y_c, so a negative target score flips the map's
sign; samples with y_c = 0 get zero weights. The layer must output (B, K, h, w) itself (no
``reshape_transform``), since it is ablated in place, and be called once per forward (a module reused at
several places of the model would be replaced at all of them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from wsol.cams.base import ActivationWeightedCAM, CAMContext, LayerSpec


class _CachedOutput(nn.Module):
    """Stands in for the target layer: returns a given output and computes nothing."""

    def __init__(self, output: Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, *_args: Any, **_kwargs: Any) -> Tensor:
        return self.output


@contextmanager
def _swapped(model: nn.Module, name: str, stand_in: nn.Module) -> Iterator[None]:
    """``model``'s submodule ``name`` replaced by ``stand_in`` inside the block, restored after."""
    parent_name, _, attribute = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    original = parent.get_submodule(attribute)
    setattr(parent, attribute, stand_in)
    try:
        yield
    finally:
        setattr(parent, attribute, original)


class AblationCAM(ActivationWeightedCAM):
    """Ablation-CAM: the relative score drop when each channel is removed."""

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, target_layer, **kwargs)
        if self.reshape_transform is not None:
            raise ValueError(
                "AblationCAM ablates the layer output in place: reshape_transform is not supported"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    def ablated_outputs(self, inputs: Tensor, layer: int, replacement: Tensor) -> Tensor:
        """The model's outputs for ``inputs`` with target layer ``layer``'s output set to ``replacement``."""
        name = self.layers[layer][0]
        if not name:  # the target layer is the model itself: its output is the replacement
            return self.output_selector(replacement)
        with _swapped(self.model, name, _CachedOutput(replacement)):
            return self.output_selector(self.model(inputs))

    def channel_weights(self, context: CAMContext, layer: int) -> Tensor:
        activations = context.activations[layer]
        batch, channels = activations.shape[:2]
        base = context.targets.scores(context.outputs).to(activations.dtype)
        units = activations.flatten(2).ne(0).any(-1).nonzero()
        ablated = base.unsqueeze(1).expand(batch, channels)
        for start in range(0, len(units), self.batch_size):
            row, chan = units[start : start + self.batch_size].unbind(1)
            keep = torch.ones_like(activations[row])
            keep[torch.arange(len(row), device=keep.device), chan] = 0
            outputs = self.ablated_outputs(context.inputs[row], layer, activations[row] * keep)
            ablated = ablated.index_put((row, chan), context.targets.scores(outputs, row).to(ablated.dtype))
        nonzero = base != 0
        safe = torch.where(nonzero, base, torch.ones_like(base)).unsqueeze(1)
        return torch.where(
            nonzero.unsqueeze(1), (base.unsqueeze(1) - ablated) / safe, torch.zeros_like(ablated)
        )
