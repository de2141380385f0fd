"""The generic LightningModule that trains any :class:`~wsol.methods.base.WSOLMethod`.

Manual optimisation: each step zeroes the gradients, lets the method back-propagate (once or several times:
min-max entropy's recursive erasing accumulates localizer gradients), checks the loss for NaN/Inf on every
rank, and steps the optimiser; the LR schedule steps once per epoch (the papers' ``MyStepLR``, min-max entropy
note §3). Validation/test: classification error plus ``wsol.evaluation.WSOLEvaluator`` on GT-class maps, with
counts and evaluator states merged across DDP processes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from wsol.evaluation.catalogue import logged_metrics
from wsol.methods.base import Batch, WSOLMethod
from wsol.methods.checkpoint import CHECKPOINT_KEY
from wsol.training.checkpoint import LastCheckpoint

"""Key of the engine's own entry in a checkpoint (config, number of classes, method state, RNG states)."""


LOGGED_METRICS = logged_metrics()
"""Scalar fields of ``EvaluationResult`` logged as ``val/<name>`` and ``test/<name>`` (plus ``error``), from
the metric catalogue (``wsol.evaluation.catalogue``)."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN/Inf; the message names the step and the last good checkpoint."""


class StepDecayLR(LRScheduler):
    """``lr = max(base_lr * gamma ** (epoch // step_size), min_lr)`` per group (the papers' ``MyStepLR``)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float, min_lr: float) -> None:
        self.step_size = step_size
        self.gamma = gamma
        self.min_lr = min_lr
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** (self.last_epoch // self.step_size)
        return [max(base * factor, self.min_lr) for base in self.base_lrs]


def build_optimizer(groups: list[dict[str, Any]], optim: Mapping[str, Any]) -> Optimizer:
    """SGD (momentum, Nesterov, weight decay) or Adam over the method's parameter groups."""
    if optim["name"] == "sgd":
        return torch.optim.SGD(
            groups,
            lr=optim["lr"],
            momentum=optim["momentum"],
            nesterov=optim["nesterov"] and optim["momentum"] > 0,
            weight_decay=optim["weight_decay"],
        )
    if optim["name"] == "adam":
        return torch.optim.Adam(groups, lr=optim["lr"], weight_decay=optim["weight_decay"])
    raise ValueError(f"optim.name: expected 'sgd' or 'adam', got {optim['name']!r}")


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()  # noqa: NPY002 (save the legacy global state)
    return {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class WSOLLightningModule(L.LightningModule):
    """Wraps a method with the engine's optimisation, logging, evaluation and checkpoint state.

    ``config`` is the plain-dict run config (``wsol.training.config.to_plain``); it is stored in checkpoints.
    """

    def __init__(
        self, method: WSOLMethod, config: Mapping[str, Any], class_names: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.run_config = dict(config)
        self.channels_last = bool(self.run_config.get("trainer", {}).get("channels_last", False))
        self.method = method.to(memory_format=torch.channels_last) if self.channels_last else method
        self.class_names = list(class_names)
        # Where the next training batch starts: (epoch, batches already done in it); saved for exact resume.
        self.train_position: tuple[int, int] = (0, 0)
        self._pending_rng_state: Mapping[str, Any] | None = None
        self._evaluator: Any = None
        self._class_counts: Tensor | None = None
        self.last_metrics: dict[str, float] = {}

    # -- optimisation ----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.run_config["optim"]
        optimizer = build_optimizer(self.method.parameter_groups(optim["lr"]), optim)
        scheduler = StepDecayLR(optimizer, optim["step_size"], optim["gamma"], optim["min_lr"])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        if self.channels_last and batch["image"].dim() == 4:
            return {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}
        return batch

    def on_train_epoch_start(self) -> None:
        self.train_position = (self.current_epoch, 0)

    def _last_good_checkpoint(self) -> str:
        for callback in self.trainer.checkpoint_callbacks:
            if isinstance(callback, LastCheckpoint) and callback.last_saved is not None:
                path, step = callback.last_saved
                return f"{path} (saved at global step {step})"
        return "none (no checkpoint was saved before the failure)"

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        if self._pending_rng_state is not None:
            _set_rng_state(self._pending_rng_state)
            self._pending_rng_state = None
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        ddp = self.trainer.strategy.model
        if isinstance(ddp, DistributedDataParallel):
            # Methods may back-propagate several times per batch, and not equally often on every rank
            # (recursive erasing): accumulate locally, then average the gradients once.
            with ddp.no_sync():
                terms = self.method.training_step(batch, backward=self.manual_backward)
            self._average_gradients()
        else:
            terms = self.method.training_step(batch, backward=self.manual_backward)
        loss = terms["loss"]
        finite = bool(torch.isfinite(loss).all())
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            value = f"{loss.item()}" if not finite else "non-finite on another process"
            raise NonFiniteLossError(
                f"training stopped: the loss is {value} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); last good checkpoint: "
                f"{self._last_good_checkpoint()}. Lower optim.lr or check the data."
            )
        optimizer.step()
        self.train_position = (self.current_epoch, batch_idx + 1)
        batch_size = int(batch["label"].shape[0])
        self.log_dict(
            {f"train/{name}": value.float().mean() for name, value in terms.items()},
            on_step=True,
            on_epoch=True,
            batch_size=batch_size,
        )
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=batch_size)

    def _average_gradients(self) -> None:
        """All-reduce (mean) the method's gradients in one flat buffer; a parameter keeps ``grad=None`` only
        if no rank produced a gradient for it (as in one process, so SGD skips it the same way)."""
        params = [p for p in self.method.parameters() if p.requires_grad]
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=self.device)
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        )
        world = self.trainer.world_size
        torch.distributed.all_reduce(flat)
        torch.distributed.all_reduce(present)
        offset = 0
        for param, seen in zip(params, present.tolist(), strict=True):
            size = param.numel()
            param.grad = flat[offset : offset + size].view_as(param).div_(world) if seen else None
            offset += size

    def on_train_epoch_end(self) -> None:
        scheduler = self.lr_schedulers()
        assert isinstance(scheduler, LRScheduler)
        for index, lr in enumerate(scheduler.get_last_lr()):
            self.log(f"lr/group{index}", lr, on_step=False, on_epoch=True)
        scheduler.step()
        self.method.on_train_epoch_end(self.current_epoch)
        self.train_position = (self.current_epoch + 1, 0)

    # -- evaluation ------------------------------------------------------------------------------------------
    def _start_evaluation(self) -> None:
        from wsol.evaluation import EvaluatorConfig, WSOLEvaluator

        self._evaluator = WSOLEvaluator(EvaluatorConfig(**self.run_config.get("eval", {})))
        self._class_counts = torch.zeros(2, dtype=torch.float64)

    def _evaluation_step(self, batch: Batch) -> None:
        images, labels = batch["image"], batch["label"]
        prediction = self.method.predict(images, classes=labels)
        assert self._class_counts is not None
        wrong = (prediction.logits.argmax(dim=1) != labels).sum()
        self._class_counts += torch.stack([wrong.double().cpu(), torch.tensor(float(labels.numel()))])
        self._evaluator.update_batch(prediction.maps.float(), batch, prediction.logits)

    def _finish_evaluation(self, prefix: str) -> dict[str, float]:
        assert self._class_counts is not None
        counts = self.trainer.strategy.reduce(self._class_counts.to(self.device), reduce_op="sum").cpu()
        self._evaluator.sync_distributed()
        result = self._evaluator.compute().to_dict()
        metrics = {f"{prefix}/error": 100.0 * float(counts[0]) / max(float(counts[1]), 1.0)}
        for name, value in result.items():
            if name in LOGGED_METRICS and value is not None:
                metrics[f"{prefix}/{name}"] = float(value)
        self.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=False)
        self.last_metrics = metrics
        self._evaluator = None
        self._class_counts = None
        return metrics

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("val")

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step(batch)

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    # -- checkpoint state ------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "config": self.run_config,
            "num_classes": self.method.num_classes,
            "class_names": self.class_names,
            "method_state": self.method.extra_state_for_checkpoint(),
            "train_position": list(self.train_position),
            "rng": _rng_state(),
            "stopped": bool(self._trainer is not None and self._trainer.should_stop),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            raise ValueError(
                f"checkpoint has no {CHECKPOINT_KEY!r} entry: it was not written by `wsol train`"
            )
        self.method.load_extra_state(state["method_state"])
        self.train_position = (int(state["train_position"][0]), int(state["train_position"][1]))
        self._pending_rng_state = state["rng"]
        if state.get("stopped"):
            self.trainer.should_stop = True  # early stopping ended the run: resume only the final evaluation
