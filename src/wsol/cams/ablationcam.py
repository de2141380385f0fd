"""Ablation-CAM (Desai & Ramaswamy, WACV 2020, Eq. 3): w_k = (y_c − y_c^k) / y_c, M = ReLU(Σ_k w_k A_k).

y_c is the target score and y_c^k the score when channel k of the target layer is set to zero, ``batch_size``
ablations of one image at a time. Only the part of the network after the target layer runs for them:

* the target layer is swapped for a stand-in that returns its cached, ablated output (when the target layer
  is the whole feature extractor, only the head runs);
* the modules that finished before the target layer started (each called once, with a tensor output) are
  swapped for stand-ins that replay their outputs of the first forward, so a target deep inside the network
  (``backbone.layer4.2``) does not rerun the layers before it. The replay is checked at every call on two
  images: if the model with the stand-ins does not give back the first forward's outputs or fails (a module
  that keeps state for later ones, an in-place write into a replayed output), the outputs are replayed as
  copies, and failing that the layers before the target are recomputed. The outputs are kept for the call.

Channels that are already zero everywhere cannot change the output and get weight 0 without a forward. As in
the paper the drop is divided by y_c, so a negative target score flips the map's sign; samples with y_c = 0
get zero weights. The layer must output (B, K, h, w) itself (no ``reshape_transform``), since it is ablated in
place, and be called once per forward (a module reused at several places of the model would be replaced at
all of them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from wsol.cams.base import ActivationWeightedCAM, CAMContext, LayerSpec

_REPLAY_RTOL = 1e-4


class _CachedOutput(nn.Module):
    """Stands in for a module: returns a given output and computes nothing."""

    def __init__(self, output: Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, *_args: Any, **_kwargs: Any) -> Tensor:
        return self.output


@contextmanager
def _swapped(model: nn.Module, stand_ins: Mapping[str, nn.Module]) -> Iterator[None]:
    """``model``'s submodules named in ``stand_ins`` replaced inside the block, restored after."""
    with ExitStack() as stack:
        for name, stand_in in stand_ins.items():
            parent_name, _, attribute = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            stack.callback(setattr, parent, attribute, parent.get_submodule(attribute))
            setattr(parent, attribute, stand_in)
        yield


class _PrefixRecorder:
    """Records one forward: each module's tensor output and finishing order, how often each module ran, and
    how many modules had finished when each target layer started. Before any target layer has started, a
    module's output replaces its descendants' (which are dropped to free them)."""

    def __init__(self, model: nn.Module, targets: Sequence[nn.Module]) -> None:
        self.model = model
        self.targets = list(targets)
        self.finished: dict[str, tuple[int, Tensor]] = {}
        self.calls: Counter[str] = Counter()
        self.starts: list[int | None] = [None] * len(self.targets)
        self.count = 0

    def __enter__(self) -> _PrefixRecorder:
        target_ids = {id(t) for t in self.targets}
        self.handles = [
            module.register_forward_hook(partial(self._finish, name))
            for name, module in self.model.named_modules()
            if name and id(module) not in target_ids
        ]
        self.handles += [
            t.register_forward_pre_hook(partial(self._start, i)) for i, t in enumerate(self.targets)
        ]
        return self

    def __exit__(self, *_exc: object) -> None:
        for handle in self.handles:
            handle.remove()

    def _start(self, index: int, _module: nn.Module, _args: Any) -> None:
        if self.starts[index] is None:
            self.starts[index] = self.count

    def _finish(self, name: str, _module: nn.Module, _args: Any, out: Any) -> None:
        self.calls[name] += 1
        self.count += 1
        if not isinstance(out, Tensor) or all(s is not None for s in self.starts):
            return
        if all(s is None for s in self.starts):
            for other in [k for k in self.finished if k.startswith(name + ".")]:
                del self.finished[other]
        self.finished[name] = (self.count, out)

    def prefix(self, layer: int, batch: int) -> dict[str, Tensor]:
        """Outermost modules that finished before target layer ``layer`` started, ran once and returned one
        row per sample (``batch`` rows): name → output."""
        start = self.starts[layer]
        done = {
            name: out
            for name, (order, out) in self.finished.items()
            if start is not None
            and order <= start
            and self.calls[name] == 1
            and out.ndim
            and len(out) == batch
        }
        parts = {name: name.split(".") for name in done}
        return {
            name: out
            for name, out in done.items()
            if not any(".".join(parts[name][:i]) in done for i in range(1, len(parts[name])))
        }


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
        self._prefix: list[dict[str, Tensor]] = []

    def forward_with_hooks(self, inputs: Tensor, *, grad: bool) -> tuple[Tensor, list[Tensor]]:
        """The base forward, recording the outputs of the modules that run before each target layer."""
        with _PrefixRecorder(self.model, [module for _, module in self.layers]) as recorder:
            result = super().forward_with_hooks(inputs, grad=grad)
        self._prefix = [
            recorder.prefix(i, len(inputs)) if name else {} for i, (name, _) in enumerate(self.layers)
        ]
        return result

    def compute_maps(self, context: CAMContext) -> list[Tensor]:
        try:
            return super().compute_maps(context)
        finally:
            self._prefix = []  # the recorded outputs live for one call only

    def ablated_outputs(
        self, inputs: Tensor, layer: int, replacement: Tensor, prefix: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """The model's outputs for ``inputs`` with target layer ``layer``'s output set to ``replacement`` and
        the modules named in ``prefix`` returning the given outputs."""
        name = self.layers[layer][0]
        if not name:  # the target layer is the model itself: its output is the replacement
            return self.output_selector(replacement)
        stand_ins = {key: _CachedOutput(out) for key, out in (prefix or {}).items()}
        with _swapped(self.model, {**stand_ins, name: _CachedOutput(replacement)}):
            return self.output_selector(self.model(inputs))

    def _checked_prefix(self, context: CAMContext, layer: int) -> tuple[dict[str, Tensor], bool]:
        """(prefix, copy): the recorded prefix if replaying it, unablated, for two copies of the first and of
        the last image gives back the first forward's outputs, as views of the recorded outputs or else (the
        model writes into them) as copies; ({}, False) if neither does: the layers before the target rerun."""
        prefix = self._prefix[layer] if self._prefix else {}
        for copy in (False, True) if prefix else ():
            if all(self._replays(context, layer, prefix, row, copy) for row in {0, len(context.inputs) - 1}):
                return prefix, copy
        return {}, False

    def _replays(
        self, context: CAMContext, layer: int, prefix: Mapping[str, Tensor], row: int, copy: bool
    ) -> bool:
        activations = context.activations[layer]
        try:
            replayed = self.ablated_outputs(
                _repeat(context.inputs, row, 2),
                layer,
                activations[row : row + 1].repeat(2, 1, 1, 1),
                _rows(prefix, row, 2, copy),
            )
        except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError):
            return False  # the model cannot run with the stand-ins: recompute instead
        expected = _repeat(context.outputs, row, 2)
        atol = _REPLAY_RTOL * float(expected.detach().abs().max())
        return replayed.shape == expected.shape and torch.allclose(replayed, expected, _REPLAY_RTOL, atol)

    def channel_weights(self, context: CAMContext, layer: int) -> Tensor:
        activations = context.activations[layer]
        base = context.targets.scores(context.outputs).to(activations.dtype)
        live = activations.flatten(2).ne(0).any(-1)
        ablated = base.unsqueeze(1).expand_as(live).clone()
        prefix, copy = self._checked_prefix(context, layer)
        for row in range(len(activations)):
            channels = live[row].nonzero().squeeze(1)
            for start in range(0, len(channels), self.batch_size):
                chan = channels[start : start + self.batch_size]
                count = len(chan)
                replacement = activations[row : row + 1].repeat(count, 1, 1, 1)
                replacement[torch.arange(count, device=chan.device), chan] = 0
                inputs = _repeat(context.inputs, row, count)  # a view when the prefix replays the input's use
                inputs = inputs if prefix else inputs.contiguous()
                outputs = self.ablated_outputs(inputs, layer, replacement, _rows(prefix, row, count, copy))
                rows = torch.full((count,), row, device=chan.device)
                ablated[row, chan] = context.targets.scores(outputs, rows).to(ablated.dtype)
        nonzero = base != 0
        safe = torch.where(nonzero, base, torch.ones_like(base)).unsqueeze(1)
        return torch.where(
            nonzero.unsqueeze(1), (base.unsqueeze(1) - ablated) / safe, torch.zeros_like(ablated)
        )


def _repeat(batch: Tensor, row: int, count: int) -> Tensor:
    """Sample ``row`` of ``batch`` seen ``count`` times (a view, no copy)."""
    return batch[row : row + 1].expand(count, *batch.shape[1:])


def _rows(prefix: Mapping[str, Tensor], row: int, count: int, copy: bool) -> dict[str, Tensor]:
    """Each recorded output's sample ``row`` seen ``count`` times, as a view or a copy."""
    return {
        name: _repeat(out, row, count).clone() if copy else _repeat(out, row, count)
        for name, out in prefix.items()
    }
