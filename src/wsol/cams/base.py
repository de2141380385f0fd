"""Shared machinery of the post-hoc CAM extractors: hooks, targets, gradients, post-processing.

Every method computes, for each target layer with activations A (B, K, h, w), a raw map (B, h, w); the base
class runs the forward pass, resolves the targets, post-processes (ReLU, upsampling, normalisation) and fuses
several layers. Design choices (see ``docs/cams.md``):

* Hooks live only for the duration of one call (registered in ``__call__``, removed in ``finally``), so no
  hook can outlive an extraction; the context manager releases what is kept for the caller (``last_logits``).
* Gradients come from ``torch.autograd.grad`` on the stored activations: parameters' ``.grad`` stay untouched.
  Without ``differentiable`` the layers before the first target layer run under ``no_grad`` and its output is
  detached into a leaf, so no graph is kept for the backbone prefix and frozen models work.
* Tensors in, tensors out, on the model's device; no NumPy on the path.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.cams.targets import Targets, TargetSpec, resolve_targets
from wsol.normalize import minmax_normalize

LayerSpec = nn.Module | str
Normalize = Literal["minmax", "max"] | None
INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def default_output_selector(output: Any) -> Tensor:
    """The logits in a model output: a tensor, ``.logits`` (``HeadOutput``, dataclasses, NamedTuples),
    ``["logits"]`` of a mapping, or the first element of a tuple/list."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, Mapping):
        logits = output.get("logits")
    if logits is None and isinstance(output, tuple | list) and output:
        logits = output[0]
    if logits is None and dataclasses.is_dataclass(output) and not isinstance(output, type):
        fields = dataclasses.fields(output)
        logits = getattr(output, fields[0].name) if fields else None
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"cannot find the logits in a model output of type {type(output).__name__}; pass output_selector="
        )
    return logits


def resolve_layers(
    model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec]
) -> list[tuple[str, nn.Module]]:
    """(name, module) of each target layer given as a module, a dotted name, or a list of them."""
    specs = [target_layer] if isinstance(target_layer, nn.Module | str) else list(target_layer)
    if not specs:
        raise ValueError("target_layer: empty list")
    names = {id(module): name for name, module in model.named_modules()}
    layers = []
    for spec in specs:
        if isinstance(spec, str):
            try:
                module = model.get_submodule(spec)
            except AttributeError as err:
                raise ValueError(f"target_layer: {type(model).__name__} has no submodule {spec!r}") from err
            layers.append((spec, module))
        elif isinstance(spec, nn.Module):
            if id(spec) not in names:
                raise ValueError(
                    f"target_layer: the {type(spec).__name__} given is not a submodule of the model"
                )
            layers.append((names[id(spec)], spec))
        else:
            raise ValueError(f"target_layer: expected a module or a dotted name, got {spec!r}")
    return layers


@torch.no_grad()
def locate_target_layer(model: nn.Module, example: Tensor) -> str:
    """Name of the last module (in execution order) whose output is a spatial (B, K, h, w) map, h·w > 1."""
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if name:

            def hook(_module: nn.Module, _args: Any, out: Any, name: str = name) -> None:
                if isinstance(out, Tensor) and out.ndim == 4 and out.shape[-1] * out.shape[-2] > 1:
                    order.append(name)

            handles.append(module.register_forward_hook(hook))
    try:
        model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not order:
        raise ValueError(f"no layer of {type(model).__name__} outputs a spatial map; pass target_layer=")
    # A container's hook fires after its children: the last entry is the outermost module of the last map.
    return order[-1]


def check_sampling(num_samples: int, std: float | None = None) -> None:
    """Validate the noise/path sampling options shared by the smoothing and integration methods."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if std is not None and std < 0:
        raise ValueError(f"std must be >= 0, got {std}")


def max_normalize(maps: Tensor) -> Tensor:
    """Per-map m / max; maps whose maximum is not positive become zeros."""
    flat = maps.flatten(1)
    high = flat.amax(1, keepdim=True)
    safe = torch.where(high > 0, high, torch.ones_like(high))
    return torch.where(high > 0, flat / safe, torch.zeros_like(flat)).view_as(maps)


def resize_maps(maps: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Resize (B, h, w) maps to ``size``; ``align_corners=False`` for the modes that take it."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    corners = False if mode in ("bilinear", "bicubic") else None
    return F.interpolate(maps.unsqueeze(1), size=size, mode=mode, align_corners=corners).squeeze(1)


@dataclass
class CAMContext:
    """What a method sees of one extraction: inputs, model outputs, targets, target-layer activations."""

    inputs: Tensor
    outputs: Tensor
    targets: Targets
    activations: list[Tensor]
    """Per target layer, (B, K, h, w), after ``reshape_transform``."""
    raw_activations: list[Tensor]
    """Per target layer, as the layer returned them (the tensors gradients are taken with respect to)."""
    differentiable: bool


class BaseCAM(abc.ABC):
    """A batched, tensor-native CAM extractor on any ``nn.Module``.

    ``model``: the network (call ``model.eval()`` first for inference: BatchNorm in training mode couples the
    samples of a batch). ``target_layer``: a module, a dotted name, or a list of them (maps fused with
    ``fuse``); ``None`` locates the last spatial layer at the first call. ``output_selector`` picks the logits
    in the model output (default: :func:`default_output_selector`). ``reshape_transform`` maps a layer output
    to (B, K, h, w), e.g. transformer tokens (B, 1 + h·w, K) to a grid; it is applied to activations and
    gradients. ``fuse``: how per-layer maps combine after resizing to the largest map (or ``upsample_to``).
    """

    needs_gradients: ClassVar[bool] = False
    default_relu: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        output_selector: Callable[[Any], Tensor] | None = None,
        reshape_transform: Callable[[Tensor], Tensor] | None = None,
        fuse: Literal["max", "mean"] = "max",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        if fuse not in ("max", "mean"):
            raise ValueError(f"fuse: expected 'max' or 'mean', got {fuse!r}")
        self.model = model
        self.layers = resolve_layers(model, target_layer) if target_layer is not None else []
        self.output_selector = output_selector or default_output_selector
        self.reshape_transform = reshape_transform
        self.fuse = fuse
        self.last_logits: Tensor | None = None

    # -- context manager --------------------------------------------------------------------------------
    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release what the extractor keeps between calls (the last logits). Hooks never outlive a call."""
        self.last_logits = None

    def __repr__(self) -> str:
        names = [name for name, _ in self.layers] or "auto"
        return f"{type(self).__name__}(target_layer={names})"

    # -- extraction --------------------------------------------------------------------------------
    def __call__(
        self,
        inputs: Tensor,
        targets: TargetSpec = None,
        *,
        relu: bool | None = None,
        normalize: Normalize = "minmax",
        upsample_to: tuple[int, int] | Literal["input"] | None = None,
        mode: str = "bilinear",
        differentiable: bool = False,
    ) -> Tensor:
        """CAMs of ``inputs`` (B, ...) for ``targets`` (see :mod:`wsol.cams.targets`).

        ``relu``: clamp the raw maps at 0 (``None``: the method's paper default). ``normalize``: ``"minmax"``
        (per map to [0, 1], constant maps to 0), ``"max"`` (divide by the max) or ``None`` (raw scale).
        ``upsample_to``: ``None`` (feature resolution), ``(H, W)`` or ``"input"`` (the input's H, W), with the
        interpolation ``mode``. Post-processing order: ReLU, resize, normalise. ``differentiable``: the maps
        carry gradients to the model (and inputs) for use inside a training loss. Returns (B, h, w) or
        (B, H, W). The model outputs of the call are kept in ``last_logits`` (detached unless differentiable).
        """
        self._check_inputs(inputs, normalize, upsample_to, mode)
        if self.needs_gradients and torch.is_inference_mode_enabled():
            raise RuntimeError(
                f"{type(self).__name__} needs gradients: do not call it under torch.inference_mode()"
            )
        if not self.layers:
            self.layers = resolve_layers(self.model, locate_target_layer(self.model, inputs[:1]))
        with torch.set_grad_enabled(differentiable):
            outputs, raw = self.forward_with_hooks(inputs, grad=self.needs_gradients or differentiable)
            self.last_logits = outputs if differentiable else outputs.detach()
            context = CAMContext(
                inputs=inputs,
                outputs=outputs,
                targets=resolve_targets(targets, outputs),
                activations=[self._reshape(a) for a in raw],
                raw_activations=raw,
                differentiable=differentiable,
            )
            maps = self.compute_maps(context)
            maps = self._postprocess(maps, inputs, relu, normalize, upsample_to, mode)
        return maps if differentiable else maps.detach()

    @abc.abstractmethod
    def compute_maps(self, context: CAMContext) -> list[Tensor]:
        """Raw maps (B, h, w), one per target layer, before ReLU and normalisation."""

    def forward_with_hooks(self, inputs: Tensor, *, grad: bool) -> tuple[Tensor, list[Tensor]]:
        """Run the model once and return (logits, target-layer outputs in ``self.layers`` order).

        With ``grad``, the first target layer reached re-enables autograd and, if its output does not require
        grad (prefix under ``no_grad`` or frozen), replaces it by a detached leaf that does.
        """
        stored: dict[int, Tensor] = {}
        handles = []
        for index, (_, module) in enumerate(self.layers):

            def hook(_module: nn.Module, _args: Any, out: Any, index: int = index) -> Tensor | None:
                if not isinstance(out, Tensor):
                    raise TypeError(
                        f"target layer {self.layers[index][0]!r} returned {type(out).__name__}, not a Tensor"
                    )
                replaced = None
                if grad and not out.requires_grad:
                    torch.set_grad_enabled(True)
                    replaced = out = out.detach().requires_grad_(True)
                stored[index] = out
                return replaced

            handles.append(module.register_forward_hook(hook))
        try:
            with torch.set_grad_enabled(torch.is_grad_enabled()):  # restores the mode a hook switched on
                outputs = self.output_selector(self.model(inputs))
        finally:
            for handle in handles:
                handle.remove()
        missing = [self.layers[i][0] for i in range(len(self.layers)) if i not in stored]
        if missing:
            raise ValueError(f"target layer(s) {missing} did not run during the forward pass")
        if len(outputs) != len(inputs):
            raise ValueError(f"model output has batch size {len(outputs)} for {len(inputs)} inputs")
        return outputs, [stored[i] for i in range(len(self.layers))]

    def gradients(
        self, context: CAMContext, outputs: Tensor | None = None, raw: list[Tensor] | None = None
    ) -> list[Tensor]:
        """∂(Σ_b S_b)/∂A per target layer, reshaped like the activations (samples are independent, so the
        gradient of the batch sum is each sample's own gradient). ``create_graph`` when differentiable."""
        outputs = context.outputs if outputs is None else outputs
        raw = context.raw_activations if raw is None else raw
        with torch.enable_grad():  # the score is one more op on the graph recorded from the target layer
            total = context.targets.scores(outputs).sum()
        grads = torch.autograd.grad(total, raw, create_graph=context.differentiable)
        return [self._reshape(g) for g in grads]

    # -- helpers --------------------------------------------------------------------------------
    def _reshape(self, tensor: Tensor) -> Tensor:
        out = self.reshape_transform(tensor) if self.reshape_transform is not None else tensor
        if out.ndim != 4:
            hint = (
                " (pass reshape_transform= for token-shaped features)"
                if self.reshape_transform is None
                else ""
            )
            raise ValueError(f"target layer output must be (B, K, h, w), got shape {tuple(out.shape)}{hint}")
        return out

    def _check_inputs(self, inputs: Tensor, normalize: Normalize, upsample_to: object, mode: str) -> None:
        if not isinstance(inputs, Tensor):
            raise TypeError(f"inputs: expected a Tensor, got {type(inputs).__name__}")
        if inputs.ndim < 2 or len(inputs) == 0:
            raise ValueError(f"inputs: expected a non-empty batch (B, ...), got shape {tuple(inputs.shape)}")
        param = next(self.model.parameters(), None)
        if param is not None and param.device != inputs.device:
            raise ValueError(f"inputs are on {inputs.device} but the model is on {param.device}")
        if normalize not in ("minmax", "max", None):
            raise ValueError(f"normalize: expected 'minmax', 'max' or None, got {normalize!r}")
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"mode: expected one of {INTERPOLATION_MODES}, got {mode!r}")
        if upsample_to == "input":
            if inputs.ndim != 4:
                raise ValueError(f"upsample_to='input' needs (B, C, H, W) inputs, got {tuple(inputs.shape)}")
        elif upsample_to is not None and not (
            isinstance(upsample_to, tuple | list)
            and len(upsample_to) == 2
            and all(isinstance(v, int) and v > 0 for v in upsample_to)
        ):
            raise ValueError(
                f"upsample_to: expected None, 'input' or (H, W) positive ints, got {upsample_to!r}"
            )

    def _postprocess(
        self,
        maps: list[Tensor],
        inputs: Tensor,
        relu: bool | None,
        normalize: Normalize,
        upsample_to: tuple[int, int] | str | None,
        mode: str,
    ) -> Tensor:
        relu = self.default_relu if relu is None else relu
        if upsample_to == "input":
            size = tuple(inputs.shape[-2:])
        elif upsample_to is not None:
            size = tuple(upsample_to)
        else:
            size = max((tuple(m.shape[-2:]) for m in maps), key=lambda s: s[0] * s[1])
        norm = {"minmax": minmax_normalize, "max": max_normalize, None: lambda m: m}[normalize]
        processed = []
        for layer_map in maps:
            layer_map = layer_map.clamp_min(0) if relu else layer_map
            processed.append(resize_maps(layer_map, size, mode))  # type: ignore[arg-type]
        if len(processed) == 1:
            return norm(processed[0])
        stacked = torch.stack([norm(m) for m in processed])
        fused = stacked.amax(0) if self.fuse == "max" else stacked.mean(0)
        return norm(fused)


class ActivationWeightedCAM(BaseCAM):
    """CAMs of the form M = Σ_k w_k A_k with per-sample channel weights w (B, K)."""

    @abc.abstractmethod
    def channel_weights(self, context: CAMContext, layer: int) -> Tensor:
        """Channel weights (B, K) of target layer ``layer``."""

    def compute_maps(self, context: CAMContext) -> list[Tensor]:
        return [
            torch.einsum("bk,bkhw->bhw", self.channel_weights(context, i), a)
            for i, a in enumerate(context.activations)
        ]


class GradientCAM(BaseCAM):
    """Grad-CAM family: maps from the activations A and g = ∂S_c/∂A (S_c the target's pre-softmax score)."""

    needs_gradients = True

    def compute_maps(self, context: CAMContext) -> list[Tensor]:
        grads = self.gradients(context)
        return [self.combine(a, g) for a, g in zip(context.activations, grads, strict=True)]

    @abc.abstractmethod
    def combine(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """Raw map (B, h, w) from activations and gradients (B, K, h, w)."""


class ChannelGradientCAM(GradientCAM):
    """Gradient CAMs of the form Σ_k w_k A_k with channel weights w (B, K) computed from A and g."""

    @abc.abstractmethod
    def weights_from_gradients(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """Channel weights (B, K)."""

    def combine(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return torch.einsum("bk,bkhw->bhw", self.weights_from_gradients(activations, gradients), activations)
