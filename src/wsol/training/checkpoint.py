"""Atomic, ``weights_only``-safe checkpoints and the frequent ``last.ckpt`` behind ``wsol train --resume``.

Reading is :mod:`wsol.methods.checkpoint`'s (``read_checkpoint``), shared with the layers below.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from wsol.methods.checkpoint import read_checkpoint

LAST_NAME = "last.ckpt"
BEST_NAME = "best.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary sibling, fsyncs, then ``os.replace``: a kill never leaves a truncated file.

    Loading always uses ``weights_only=True`` (the engine stores only tensors and builtin containers).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(Path(path), map_location=map_location or "cpu")


class LastCheckpoint(Checkpoint):
    """Refreshes ``<dirpath>/last.ckpt`` every ``every_n_steps`` optimiser steps, at each epoch end and where
    a SIGTERM stopped the epoch.

    As a :class:`Checkpoint` it runs after the module's ``on_train_epoch_end`` (LR and method schedules) and
    after the epoch's validation, best-checkpoint choice and early-stopping check, so the epoch-end file
    resumes exactly at the next epoch. ``last_saved`` is what a NaN report points to.
    """

    def __init__(self, dirpath: Path, every_n_steps: int) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.last_saved: tuple[Path, int] | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / LAST_NAME

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self.last_saved = (self.path, trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Not after an epoch's last batch: validation follows, and a run killed during it must resume before
        # that batch (re-running it exactly), not after it with the epoch's validation and selection skipped.
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        if trainer.global_step > 0 and trainer.global_step % self.every_n_steps == 0 and not last_batch:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # SIGTERM (a scheduler's pre-emption, `kill`): Lightning stops at the next batch boundary. Inside an
        # epoch that point is the same as a step checkpoint's, so keep it and lose no step; after the epoch's
        # last batch or in validation, the last file on disk is already the right resume point (see above).
        mid_epoch = (
            trainer.fit_loop.epoch_loop.batch_progress.current.completed < trainer.num_training_batches
        )
        if isinstance(exception, SIGTERMException) and trainer.training and mid_epoch:
            self._save(trainer)


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose state names files relative to the run folder (``checkpoints/best.ckpt``), and
    whose ``ties="latest"`` also replaces the best checkpoint when the monitored value equals it
    (``<=``/``>=``, the min-max entropy reference code's selection); ``"earliest"`` is Lightning's strict
    comparison.

    Lightning stores absolute paths and drops the best score when the folder differs: a moved or copied run
    folder would resume against the old folder's files. The run folder is the parent of ``dirpath``.
    """

    def __init__(self, *args: Any, ties: str = "earliest", **kwargs: Any) -> None:
        if ties not in ("earliest", "latest"):
            raise ValueError(f"ties must be 'earliest' or 'latest', got {ties!r}")
        super().__init__(*args, **kwargs)
        self.ties = ties

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if self.ties == "earliest" or current is None or len(self.best_k_models) < self.save_top_k:
            return super().check_monitor_top_k(trainer, current)
        if self.save_top_k == -1:
            return True
        compare = {"min": torch.le, "max": torch.ge}[self.mode]
        better_or_tied = bool(compare(current, self.best_k_models[self.kth_best_model_path]))
        return trainer.strategy.reduce_boolean_decision(better_or_tied)

    def state_dict(self) -> dict[str, Any]:
        run_dir = os.path.dirname(str(self.dirpath))
        return _map_paths(super().state_dict(), lambda path: os.path.relpath(path, run_dir))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        run_dir = os.path.dirname(str(self.dirpath))  # joining an absolute path (older runs) keeps it
        super().load_state_dict(_map_paths(state_dict, lambda path: os.path.join(run_dir, path)))


def _map_paths(state: dict[str, Any], convert: Callable[[str], str]) -> dict[str, Any]:
    """``ModelCheckpoint`` state with every file path passed through ``convert``."""
    state = dict(state)
    for key in ("dirpath", "best_model_path", "kth_best_model_path", "last_model_path"):
        if state.get(key):
            state[key] = convert(state[key])
    state["best_k_models"] = {convert(path): score for path, score in state.get("best_k_models", {}).items()}
    return state
