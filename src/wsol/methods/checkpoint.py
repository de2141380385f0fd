"""Reading `wsol train` checkpoints safely and rebuilding their method: the one loader of every layer.

Files are read with ``torch.load(weights_only=True)`` (:func:`wsol.io.load_tensors`): only tensors and plain
containers, nothing executed or imported from the file. The method is rebuilt from the run config stored in
the checkpoint, and only if its name is a registered method (``wsol.methods.METHODS`` or an installed entry
point): a ``module:Class`` path is taken from the user's own config only. Options renamed since the checkpoint
was written are translated (``RENAMED_OPTIONS``, :mod:`wsol.methods.options`); pretrained-weight options are
dropped, as the checkpoint's tensors replace them. The engine (``wsol.training``) writes the format; methods
that start from a trained run (the weight map's frozen classifier, F-CAM) read it here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsol.io import load_tensors
from wsol.methods import ENTRY_POINT_GROUP, METHODS, build_method, is_registered, method_class
from wsol.methods.base import WSOLMethod
from wsol.methods.options import upgrade_renamed, without_pretrained_weights

__all__ = [
    "CHECKPOINT_KEY",
    "LoadedCheckpoint",
    "current_options",
    "load_checkpoint",
    "read_checkpoint",
    "stored_method",
]

CHECKPOINT_KEY = "wsol"
"""The engine's entry in a checkpoint: run config, number of classes, class names, method state, position."""
METHOD_PREFIX = "method."
"""Prefix of the method's tensors in the Lightning ``state_dict``."""


@dataclass
class LoadedCheckpoint:
    """A method in eval mode plus what the run knew: its config and class names."""

    method: WSOLMethod
    config: dict[str, Any]
    class_names: list[str] = field(default_factory=list)


def _prefix(what: str | None) -> str:
    return f"{what}: " if what else ""


def read_checkpoint(path: str | Path, map_location: Any = "cpu", what: str | None = None) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that name the file (and the option ``what``, if given)
    and what was expected."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(
            f"{_prefix(what)}{path}: is a folder; expected a checkpoint file (e.g. RUN/checkpoints/best.ckpt)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{_prefix(what)}{path}: checkpoint not found")
    try:
        checkpoint = load_tensors(path, map_location)
    except ValueError as err:
        raise ValueError(f"{_prefix(what)}{err}") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{_prefix(what)}{path}: expected a checkpoint dictionary, got {type(checkpoint).__name__}"
        )
    return checkpoint


def stored_method(path: Path, state: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """``(name, number of classes, options)`` of the method a checkpoint's engine entry describes.

    The name must be a registered method; anything else is refused before anything is imported. Options
    renamed since the checkpoint was written are moved to their new keys.
    """
    config = state.get("config")
    method = config.get("method") if isinstance(config, Mapping) else None
    name = method.get("name") if isinstance(method, Mapping) else None
    options = (method.get("options") or {}) if isinstance(method, Mapping) else None
    num_classes = state.get("num_classes")
    valid_count = type(num_classes) is int and num_classes >= 1
    if not isinstance(name, str) or not isinstance(options, Mapping) or not valid_count:
        raise ValueError(
            f"{path}: malformed {CHECKPOINT_KEY!r} entry (expected config.method.name, config.method.options "
            "and a positive integer num_classes, as `wsol train` writes them)"
        )
    if not is_registered(name):
        raise ValueError(
            f"{path}: the checkpoint names method {name!r}, which is not a registered method "
            f"({', '.join(sorted(METHODS))} or an installed {ENTRY_POINT_GROUP!r} entry point); "
            "a checkpoint may not name code to import (a `module:Class` method is taken only from your own "
            "config); refused before importing anything"
        )
    return name, num_classes, current_options(name, options)


def current_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The saved ``options`` of registered method ``name`` with the keys it renamed since (its
    ``RENAMED_OPTIONS``) moved to their new place; for checkpoints and run folders, never for user configs."""
    return upgrade_renamed(options, method_class(name).RENAMED_OPTIONS)


def load_checkpoint(path: str | Path, what: str | None = None) -> LoadedCheckpoint:
    """The method of a ``wsol train`` checkpoint with its weights and schedules, in eval mode on the CPU, with
    the run config (options in their current names) and class names. ``what`` names the option that gave the
    path in error messages (``classifier.checkpoint``)."""
    path = Path(path)
    checkpoint = read_checkpoint(path, what=what)
    state = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(state, dict) or "config" not in state or "state_dict" not in checkpoint:
        raise ValueError(
            f"{_prefix(what)}{path}: not a `wsol train` checkpoint (no {CHECKPOINT_KEY!r} entry or no "
            "state_dict)"
        )
    name, num_classes, options = stored_method(path, state)
    try:
        method = build_method(name, num_classes, without_pretrained_weights(options))
    except TypeError as err:
        raise ValueError(f"{_prefix(what)}{path}: invalid options for method {name!r}: {err}") from None
    weights = {
        key.removeprefix(METHOD_PREFIX): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(METHOD_PREFIX)
    }
    try:
        method.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(
            f"{_prefix(what)}{path}: the weights do not match the method in its config: {err}"
        ) from None
    method.load_extra_state(state.get("method_state") or {})
    config = {**state["config"], "method": {**state["config"]["method"], "options": options}}
    return LoadedCheckpoint(method.eval(), config, list(state.get("class_names", [])))
