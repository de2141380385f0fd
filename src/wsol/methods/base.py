"""The protocol every WSOL method implements.

A method owns its networks and its training loss; the training engine (``wsol.training``) owns
optimisation, checkpoints, logging and distribution, and the evaluator (``wsol.evaluation``) only sees
``Prediction``s. A new method is one file that subclasses :class:`WSOLMethod` plus one line in
``wsol.methods.METHODS``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

Batch = Mapping[str, Any]
"""A collated batch from ``wsol.data``.

Keys: image, label, mask, ignore, has_mask, has_object, boxes, image_id, orig_size (see docs/architecture.md).
"""

Backward = Callable[[Tensor], None]
"""Back-propagates a loss (the engine passes Lightning's ``manual_backward``: AMP and DDP aware)."""


@dataclass
class Prediction:
    """What a method predicts for a batch of images.

    ``logits`` are the final classifier's class scores (B, K). ``maps`` are localization maps (B, H, W) at
    the input resolution with values in [0, 1], higher meaning more foreground, for the requested classes (or
    for the predicted class when none were requested). ``masks`` is the method's own binary decision
    (B, H, W) when it has one (e.g. min-max entropy's M+ > 0.5); evaluators threshold ``maps`` otherwise.
    """

    logits: Tensor
    maps: Tensor
    masks: Tensor | None = None


@runtime_checkable
class CAMSource(Protocol):
    """Capability of a method with a classifier that post-hoc CAMs (``wsol.cams``) can explain.

    ``cam_model()`` returns ``(model, target_layer)``: a module mapping images (B, 3, H, W) to class scores
    (or an output with ``logits``) and the layer whose activations the CAM weighs (a module of ``model``).
    Test with ``isinstance(method, CAMSource)``; ``wsol localize/evaluate --cam`` need it.
    """

    def cam_model(self) -> tuple[nn.Module, nn.Module]:
        """``(model, target_layer)`` for :func:`wsol.cams.build_extractor`."""
        ...


@dataclass
class LossOutput:
    """A differentiable total loss and its detached named terms for logging."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


class WSOLMethod(nn.Module, abc.ABC):
    """Base class of the training-time WSOL methods (CAM-family heads, min-max entropy, weight map, ...)."""

    RENAMED_OPTIONS: ClassVar[Mapping[str, str]] = {}
    """Options renamed since checkpoints were written: old key -> new dotted key under ``method.options``;
    refused in a user's config, translated when a checkpoint is read (:mod:`wsol.methods.options`)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes

    @abc.abstractmethod
    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        """Class scores and localization maps for ``images`` (B, 3, H, W).

        ``classes`` (B,) selects the class whose map is returned (ground truth for GT-known metrics); ``None``
        means the predicted class.
        """

    @abc.abstractmethod
    def training_loss(self, batch: Batch) -> LossOutput:
        """The method's training objective on one batch (no backward, no optimiser step)."""

    def training_step(self, batch: Batch, backward: Backward) -> dict[str, Tensor]:
        """Compute and back-propagate the loss; return detached terms to log.

        Methods that need several backward passes per batch (recursive erasing accumulates localizer gradients
        over its steps) override this and call ``backward`` more than once. The engine zeroes gradients before
        and steps the optimiser after.
        """
        output = self.training_loss(batch)
        backward(output.total)
        terms = {name: value.detach() for name, value in output.terms.items()}
        terms.setdefault("loss", output.total.detach())
        return terms

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups; override for per-part learning rates (e.g. new layers at 10x)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def on_train_epoch_end(self, epoch: int) -> None:
        """Hook for per-epoch schedules (log-barrier t, mask sigma, ...). ``epoch`` counts from 0."""

    @torch.no_grad()
    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        """Non-parameter state that a resumed run must restore (schedules); see :meth:`load_extra_state`."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state_for_checkpoint` returned."""
