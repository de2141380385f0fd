"""Layers that a method places inside a backbone, after one of the backbone's declared insertion points.

Each backbone lists its ``insertion_points`` (:class:`~wsol.models.backbones.base.Backbone`); a method builds
an :class:`InsertedLayer` per point it wants and calls :meth:`InsertedLayer.attach`, which runs the layer on
that submodule's output through a forward hook. Nothing in the backbone is renamed, so pretrained weights and
checkpoints load unchanged, and a new backbone supports every such method by declaring its points.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from wsol.models.backbones.base import Backbone


class InsertedLayer(nn.Module):
    """A layer ``forward(features) -> features`` run after a backbone submodule once attached.

    The method that builds it must also register it as its own submodule (so that ``train()``/``eval()`` and
    ``to(device)`` reach it); the hook is a bound method, so a deep copy of the method stays consistent.
    """

    def attach(self, backbone: Backbone, point: str) -> RemovableHandle:
        """Run this layer on the output of ``backbone``'s insertion point ``point``."""
        if point not in backbone.insertion_points:
            raise ValueError(
                f"backbone {backbone.name!r} has no insertion point {point!r}; "
                f"declared: {list(backbone.insertion_points) or 'none'}"
            )
        return backbone.get_submodule(point).register_forward_hook(self._after)

    def _after(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        return self(output)


def attach_layers(backbone: Backbone, layers: Iterable[InsertedLayer], points: Sequence[str]) -> None:
    """Attach the i-th layer after ``points[i]`` of ``backbone`` (one layer per point)."""
    for layer, point in zip(layers, points, strict=True):
        layer.attach(backbone, point)
