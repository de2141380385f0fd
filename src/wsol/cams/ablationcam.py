"""Ablation-CAM (Desai & Ramaswamy, WACV 2020, Eq. 3): w_k = (y_c − y_c^k) / y_c, M = ReLU(Σ_k w_k A_k).

y_c is the target score and y_c^k the score when channel k of the target layer is set to zero (the layer's
output is replaced through a forward hook and the model re-run, ``batch_size`` ablations at a time). Channels
that are already zero everywhere cannot change the output and get weight 0 without a forward. As in the paper
the drop is divided by y_c, so a negative target score flips the map's sign; samples with y_c = 0 get zero
weights. The layer must output (B, K, h, w) itself (no ``reshape_transform``), since it is ablated in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from wsol.cams.base import ActivationWeightedCAM, CAMContext, LayerSpec


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

    def channel_weights(self, context: CAMContext, layer: int) -> Tensor:
        activations = context.activations[layer]
        batch, channels = activations.shape[:2]
        base = context.targets.scores(context.outputs).to(activations.dtype)
        units = activations.flatten(2).ne(0).any(-1).nonzero()
        ablated = base.unsqueeze(1).expand(batch, channels)
        module = self.layers[layer][1]
        for start in range(0, len(units), self.batch_size):
            row, chan = units[start : start + self.batch_size].unbind(1)
            keep = torch.ones_like(activations[row])
            keep[torch.arange(len(row), device=keep.device), chan] = 0
            replacement = activations[row] * keep

            def replace(_module: nn.Module, _args: Any, _out: Any, value: Tensor = replacement) -> Tensor:
                return value

            handle = module.register_forward_hook(replace)
            try:
                outputs = self.output_selector(self.model(context.inputs[row]))
            finally:
                handle.remove()
            ablated = ablated.index_put((row, chan), context.targets.scores(outputs, row).to(ablated.dtype))
        nonzero = base != 0
        safe = torch.where(nonzero, base, torch.ones_like(base)).unsqueeze(1)
        return torch.where(
            nonzero.unsqueeze(1), (base.unsqueeze(1) - ablated) / safe, torch.zeros_like(ablated)
        )
