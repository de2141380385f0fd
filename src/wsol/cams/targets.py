"""What a CAM explains: one scalar per sample, taken from the model's per-sample output.

A target specification is resolved against the model outputs of a batch into :class:`Targets`:

* ``None``: the predicted class (``argmax`` of the logits) of each sample;
* an ``int``: the same class for every sample;
* a sequence of ints or an integer tensor of shape (B,) or (1,): one class per sample;
* a callable ``fn(output) -> scalar tensor`` applied to each sample's output (e.g. a segmentation score or a
  sigmoid output), or a sequence of B (or 1) such callables.

The number of targets must be 1 (broadcast) or the batch size; anything else is an error, never a silent
truncation (pytorch-grad-cam issue #328).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import Tensor

TargetFn = Callable[[Tensor], Tensor]
TargetSpec = int | Sequence[int] | Tensor | TargetFn | Sequence[TargetFn] | None


@dataclass(frozen=True)
class ClassScore:
    """Callable target: the pre-softmax score of class ``index`` (or its softmax probability)."""

    index: int
    softmax: bool = False

    def __call__(self, output: Tensor) -> Tensor:
        if output.ndim != 1:
            raise ValueError(
                f"ClassScore expects a per-sample output of shape (K,), got {tuple(output.shape)}"
            )
        return output.softmax(-1)[self.index] if self.softmax else output[self.index]


@dataclass(frozen=True)
class Targets:
    """Resolved targets of a batch: class indices (B,) or B callables (exactly one of the two)."""

    classes: Tensor | None
    fns: tuple[TargetFn, ...] | None

    def __len__(self) -> int:
        return len(self.classes) if self.classes is not None else len(self.fns or ())

    def scores(self, outputs: Tensor, rows: Tensor | None = None) -> Tensor:
        """Target score of each row of ``outputs``; ``rows[i]`` is the batch sample row ``i`` belongs to.

        Class targets give the pre-softmax score S_c (the quantity Grad-CAM differentiates).
        """
        rows = self._rows(outputs, rows)
        if self.classes is not None:
            _check_logits(outputs)
            return outputs.gather(1, self.classes[rows].unsqueeze(1)).squeeze(1)
        return self._apply_fns(outputs, rows)

    def confidences(self, outputs: Tensor, rows: Tensor | None = None) -> Tensor:
        """Confidence of each row for the Score-CAM family: the softmax probability of the class for class
        targets; the callable's value itself for callable targets (the callable defines the confidence)."""
        rows = self._rows(outputs, rows)
        if self.classes is not None:
            _check_logits(outputs)
            return outputs.softmax(1).gather(1, self.classes[rows].unsqueeze(1)).squeeze(1)
        return self._apply_fns(outputs, rows)

    def _rows(self, outputs: Tensor, rows: Tensor | None) -> Tensor:
        if rows is None:
            if len(outputs) != len(self):
                raise ValueError(f"{len(outputs)} outputs for {len(self)} targets")
            return torch.arange(len(outputs), device=outputs.device)
        return rows

    def _apply_fns(self, outputs: Tensor, rows: Tensor) -> Tensor:
        assert self.fns is not None
        values = []
        for output, row in zip(outputs, rows.tolist(), strict=True):
            value = self.fns[row](output)
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise ValueError(
                    f"a target callable must return a scalar tensor, got {type(value).__name__}"
                    + (f" of shape {tuple(value.shape)}" if isinstance(value, Tensor) else "")
                )
            values.append(value.reshape(()))
        return torch.stack(values)


def _check_logits(outputs: Tensor) -> None:
    if outputs.ndim != 2:
        raise ValueError(
            f"class-index targets need model outputs of shape (B, K), got {tuple(outputs.shape)}; "
            "pass an output_selector, or callable targets"
        )


def resolve_targets(spec: TargetSpec, outputs: Tensor) -> Targets:
    """Resolve ``spec`` (see the module docstring) against the batch ``outputs`` (B, ...)."""
    batch = len(outputs)
    if spec is None:
        _check_logits(outputs)
        return Targets(outputs.detach().argmax(1), None)
    if callable(spec) and not isinstance(spec, Tensor):
        return Targets(None, (spec,) * batch)
    if isinstance(spec, Sequence) and not isinstance(spec, str) and spec and all(callable(s) for s in spec):
        fns = tuple(spec)
        _check_count(len(fns), batch)
        return Targets(None, fns * batch if len(fns) == 1 else fns)
    if isinstance(spec, bool) or isinstance(spec, str):
        raise ValueError(f"targets: expected a class index, a list of them or callables, got {spec!r}")
    if isinstance(spec, Integral):
        classes = torch.full((1,), int(spec), dtype=torch.long)
    elif isinstance(spec, Tensor):
        if spec.is_floating_point() or spec.is_complex() or spec.dtype == torch.bool or spec.ndim > 1:
            raise ValueError(
                f"targets: expected an integer tensor of shape (B,), got {spec.dtype} {tuple(spec.shape)}"
            )
        classes = spec.reshape(-1).long()
    elif isinstance(spec, Sequence) and all(
        isinstance(s, Integral) and not isinstance(s, bool) for s in spec
    ):
        classes = torch.tensor([int(s) for s in spec], dtype=torch.long)
    else:
        raise ValueError(f"targets: expected a class index, a list of them or callables, got {spec!r}")
    _check_count(len(classes), batch)
    _check_logits(outputs)
    num_classes = outputs.shape[1]
    if len(classes) and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
        raise ValueError(f"targets: class indices must lie in [0, {num_classes}), got {classes.tolist()}")
    classes = classes.to(outputs.device)
    return Targets(classes.expand(batch).clone() if len(classes) == 1 else classes, None)


def _check_count(count: int, batch: int) -> None:
    if count not in (1, batch):
        raise ValueError(f"targets: got {count} targets for a batch of {batch}; give 1 or {batch}")
