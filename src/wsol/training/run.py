"""``train(config)``: one training run in a run folder, with resume, DDP, model selection and a test report.

Run folder ``<output_dir>/<name>/``: ``config.yaml`` (resolved), ``checkpoints/{last,best}.ckpt``,
``logs/csv/metrics.csv``, ``logs/tensorboard/``, and ``metrics.json`` (validation and test metrics of the
selected checkpoint, written at the end).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from wsol.data.format import DatasetInfo, read_dataset_info
from wsol.data.size_policy import resolve_size_policy
from wsol.data.splits import require_disjoint_splits
from wsol.io import atomic_write_text
from wsol.methods import WSOLMethod, build_method, is_registered
from wsol.methods.checkpoint import CHECKPOINT_KEY, current_options, read_checkpoint
from wsol.methods.options import pretrained_weights
from wsol.training.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    AtomicCheckpointIO,
    BestCheckpoint,
    LastCheckpoint,
)
from wsol.training.config import SELECTION_MODES, load_config, read_yaml, to_plain
from wsol.training.datamodule import WSOLDataModule
from wsol.training.module import WSOLLightningModule
from wsol.training.run_folder import locked_run_folder, new_run_folder

RUN_DIR_ENV = "WSOL_RUN_DIR"
"""Set by the launching process so that DDP child processes write into the same run folder."""

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"


@dataclass
class RunResult:
    """Where a run wrote its files and the metrics of its selected checkpoint."""

    run_dir: Path
    checkpoint: Path
    val: dict[str, float]
    test: dict[str, float]
    train_seconds: float


def resolve_data_root(data: Mapping[str, Any]) -> Path:
    """``data.root``, or the synthetic benchmark generated once into ``data.cache_dir`` (default
    ``$WSOL_CACHE_DIR`` or ``~/.cache/wsol``) with the ``data.synthetic`` options of ``ensure_synthetic``."""
    if data.get("root"):
        root = Path(data["root"]).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"data.root: {root} is not a folder (expected a dataset written by `wsol data`)"
            )
        return root
    from wsol.data.synth import ensure_synthetic

    options = dict(data.get("synthetic") or {})
    try:
        return Path(ensure_synthetic(data.get("cache_dir"), **options))
    except TypeError as err:
        raise ValueError(f"data.synthetic: invalid options {options}: {err}") from None


def pretrained_normalization(method: WSOLMethod, options: Mapping[str, Any]) -> dict[str, list[float]]:
    """``{"mean", "std"}`` the ImageNet weights of the method's backbone expect (EfficientNet-Lite:
    ``(pixel − 127) / 128``; torchvision's: ImageNet statistics); ``{}`` without ImageNet weights."""
    from wsol.models import Backbone

    if pretrained_weights(options) != "imagenet":
        return {}
    backbone = next((module for module in method.modules() if isinstance(module, Backbone)), None)
    if backbone is None:
        return {}
    return {"mean": list(backbone.input_mean), "std": list(backbone.input_std)}


def instantiate_method(name: str, num_classes: int, options: Mapping[str, Any]) -> WSOLMethod:
    """A registered method (``wsol.methods.METHODS``) or an external ``package.module:Class``.

    Only for names from the user's own command line or YAML: a ``module:Class`` name is imported and called.
    """
    try:
        if ":" in name and not is_registered(name):
            module_name, _, class_name = name.partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            method = cls(num_classes=num_classes, **dict(options))
        else:
            method = build_method(name, num_classes, options)
    except TypeError as err:
        raise ValueError(f"method.options: invalid options for method {name!r}: {err}") from None
    if not isinstance(method, WSOLMethod):
        raise ValueError(f"method.name: {name!r} is not a WSOLMethod subclass")
    return method


def check_evaluator_config(options: Mapping[str, Any]) -> None:
    """Fail before training if the ``eval`` section is not a valid ``EvaluatorConfig``."""
    from wsol.evaluation import EvaluatorConfig

    try:
        EvaluatorConfig(**options)
    except TypeError as err:
        raise ValueError(f"eval: invalid evaluator options {dict(options)}: {err}") from None


def is_launcher() -> bool:
    """True in the process that starts a run (not a DDP child started by Lightning, torchrun or SLURM)."""
    return all(int(os.environ.get(var, "0")) == 0 for var in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def run_dir_for(config: DictConfig) -> Path:
    """``output_dir/name``; without a name, a new folder ``<method>-<timestamp>[-N]`` unique to this run."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if not is_launcher():
        if inherited:
            return Path(inherited)
        if config.name is None:
            raise ValueError("name: required when processes are started externally (torchrun, several nodes)")
    output_dir = Path(config.output_dir).expanduser().resolve()
    if config.name:
        return output_dir / config.name
    return new_run_folder(
        output_dir, f"{config.method.name.replace(':', '.')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )


def check_resume(last_path: Path, config: DictConfig, num_classes: int) -> dict[str, Any]:
    """Read ``last.ckpt``; refuse a resume that cannot continue the saved run: another number of classes,
    or a ``max_epochs`` / ``max_steps`` below what it has already trained."""
    checkpoint = read_checkpoint(last_path)
    state = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(state, dict):
        raise ValueError(f"{last_path}: not a `wsol train` checkpoint (no {CHECKPOINT_KEY!r} entry)")
    if int(state["num_classes"]) != num_classes:
        raise ValueError(
            f"{last_path}: the run was trained with {state['num_classes']} classes but the dataset now has "
            f"{num_classes}; resume with the run's data (data.root / data.synthetic) or start a new run"
        )
    epoch, done = (int(value) for value in state["train_position"])
    started = epoch + (1 if done else 0)
    if config.trainer.max_epochs < started:
        raise ValueError(
            f"trainer.max_epochs={config.trainer.max_epochs}: {last_path} has already trained "
            f"{epoch} epochs{f' and {done} batches of the next' if done else ''}; "
            f"resume with trainer.max_epochs >= {started} or start a new run"
        )
    steps = int(checkpoint.get("global_step", 0))
    if 0 <= config.trainer.max_steps < steps:
        raise ValueError(
            f"trainer.max_steps={config.trainer.max_steps}: {last_path} has already trained {steps} steps; "
            f"resume with trainer.max_steps >= {steps} (or -1) or start a new run"
        )
    return checkpoint


def check_weights_fit(last_path: Path, saved: Mapping[str, Any], module: WSOLLightningModule) -> None:
    """Refuse a resume whose configured model differs from the saved weights (names and shapes)."""
    shapes = {name: tuple(value.shape) for name, value in module.state_dict().items()}
    saved_shapes = {name: tuple(value.shape) for name, value in saved.items()}
    if shapes == saved_shapes:
        return
    differences = [
        *(f"missing {name}" for name in sorted(shapes.keys() - saved_shapes.keys())),
        *(f"unexpected {name}" for name in sorted(saved_shapes.keys() - shapes.keys())),
        *(
            f"{name} is {saved_shapes[name]} in the checkpoint, {shape} in the model"
            for name, shape in sorted(shapes.items())
            if name in saved_shapes and saved_shapes[name] != shape
        ),
    ]
    raise ValueError(
        f"{last_path}: the saved weights do not fit the configured model (were method.name or method.options "
        f"changed?): {'; '.join(differences[:4])}{' ...' if len(differences) > 4 else ''}"
    )


def _trainer(config: DictConfig, run_dir: Path, callbacks: list[Any], loggers: list[Any] | bool) -> L.Trainer:
    t = config.trainer
    limits = {
        key: getattr(t, key) for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches")
    }
    try:
        return _lightning_trainer(t, run_dir, callbacks, loggers, limits)
    except MisconfigurationException as err:  # devices, accelerator or strategy this machine cannot provide
        raise ValueError(f"trainer: {err}") from None


def _lightning_trainer(
    t: DictConfig, run_dir: Path, callbacks: list[Any], loggers: list[Any] | bool, limits: dict[str, Any]
) -> L.Trainer:
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        deterministic=t.deterministic,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=run_dir,
        plugins=[AtomicCheckpointIO()],
        callbacks=callbacks,
        logger=loggers,
        **{key: value for key, value in limits.items() if value is not None},
    )


def train(config: DictConfig, *, run_dir: Path | None = None, resume: bool = False) -> RunResult:
    """Train, select on ``trainer.select_on``, evaluate the selection on val and test (``metrics.json``).

    The launching process holds the run folder's lock throughout (a second run on it refuses to start).
    """
    plain = to_plain(config)
    check_evaluator_config(plain["eval"])
    root, info, chosen = _resolve_data(plain["data"])
    run_dir = Path(run_dir).expanduser().resolve() if run_dir is not None else run_dir_for(config)
    last_path = run_dir / "checkpoints" / LAST_NAME
    if resume and not last_path.is_file():
        raise FileNotFoundError(f"{last_path}: no checkpoint to resume from in run folder {run_dir}")
    with locked_run_folder(run_dir) if is_launcher() else contextlib.nullcontext():
        saved = check_resume(last_path, config, info.num_classes)["state_dict"] if resume else None
        if not resume and last_path.exists():
            raise ValueError(
                f"{run_dir}: the run folder already has checkpoints; use --resume or another name"
            )
        os.environ[RUN_DIR_ENV] = str(run_dir)
        # Seed after the data exist: generating the synthetic benchmark must not change the model's draws.
        L.seed_everything(config.seed, workers=True, verbose=False)
        method = instantiate_method(config.method.name, info.num_classes, plain["method"]["options"])
        if "mean" not in chosen and "std" not in chosen:
            # ImageNet weights come with their input normalisation unless the config sets one.
            plain["data"]["transforms"].update(pretrained_normalization(method, plain["method"]["options"]))
        module = WSOLLightningModule(method, plain, class_names=info.class_names)
        if saved is not None:
            check_weights_fit(last_path, saved, module)
            del saved
        datamodule = WSOLDataModule(root, plain["data"], seed=config.seed)
        if is_launcher():
            atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(plain)))
        try:
            return _fit_and_evaluate(run_dir, config, module, datamodule, resume)
        except SIGTERMException:
            raise TrainingInterruptedError(_interrupted_message(run_dir)) from None


class TrainingInterruptedError(RuntimeError):
    """``wsol train`` received SIGTERM and stopped at a batch boundary; ``--resume`` continues it."""


def _interrupted_message(run_dir: Path) -> str:
    last_path = run_dir / "checkpoints" / LAST_NAME
    if not last_path.is_file():
        return f"{run_dir}: stopped by SIGTERM before the first checkpoint; start the run again"
    epoch, batches = read_checkpoint(last_path)[CHECKPOINT_KEY]["train_position"]
    return (
        f"{run_dir}: stopped by SIGTERM; {last_path} holds epoch {epoch} after {batches} batches; "
        f"continue with `wsol train --resume {run_dir}`"
    )


def _resolve_data(data: dict[str, Any]) -> tuple[Path, DatasetInfo, dict[str, Any]]:
    """Dataset root and info, with disjoint splits; fills ``data["transforms"]`` (the dataset's suggestion if
    the config chose none, sized by the size policy) and returns the transforms the config chose."""
    root = resolve_data_root(data)
    info = read_dataset_info(root)
    splits = [data["train_split"], data["val_split"], data["test_split"]]
    require_disjoint_splits(root, splits, allow=data["allow_overlap"])
    chosen = dict(data["transforms"] or {})
    if not chosen:
        # The dataset's suggested transform (the synthetic benchmark records one); stored in the run config.
        data["transforms"] = dict(info.extra.get("transform") or {})
    data["transforms"] = resolve_size_policy(data["transforms"], root, splits, data["frame_size"])
    return root, info, chosen


def _callbacks(config: DictConfig, checkpoint_dir: Path) -> tuple[BestCheckpoint, list[Any]]:
    """The best-checkpoint callback and the whole list (early stopping first, as before)."""
    select_on = config.trainer.select_on
    mode = SELECTION_MODES[select_on]
    best = BestCheckpoint(
        ties=config.trainer.select_ties,
        dirpath=checkpoint_dir,
        filename=BEST_NAME.removesuffix(".ckpt"),
        monitor=select_on,
        mode=mode,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
        save_on_train_epoch_end=False,
    )
    callbacks: list[Any] = [best, LastCheckpoint(checkpoint_dir, config.trainer.checkpoint_every_n_steps)]
    if config.trainer.patience is not None:
        callbacks.insert(
            0,
            EarlyStopping(
                monitor=select_on, mode=mode, patience=config.trainer.patience, check_on_train_epoch_end=False
            ),
        )
    return best, callbacks


def _loggers(run_dir: Path, resume: bool) -> list[Any]:
    csv_version = "csv"
    if resume:  # Lightning's CSV logger deletes an existing metrics.csv: each resumed part gets its folder
        parts = 1
        while (run_dir / "logs" / f"csv-resume{parts}").exists():
            parts += 1
        csv_version = f"csv-resume{parts}"
    return [
        CSVLogger(save_dir=run_dir, name="logs", version=csv_version),
        TensorBoardLogger(save_dir=run_dir, name="logs", version="tensorboard", default_hp_metric=False),
    ]


def _fit_and_evaluate(
    run_dir: Path, config: DictConfig, module: WSOLLightningModule, datamodule: WSOLDataModule, resume: bool
) -> RunResult:
    last_path = run_dir / "checkpoints" / LAST_NAME
    best, callbacks = _callbacks(config, last_path.parent)
    trainer = _trainer(config, run_dir, callbacks, _loggers(run_dir, resume))
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=last_path if resume else None, weights_only=True)
    train_seconds = time.perf_counter() - start

    selected = Path(best.best_model_path) if best.best_model_path else last_path
    checkpoint = read_checkpoint(selected)
    module.load_state_dict(checkpoint["state_dict"])
    module.method.load_extra_state(checkpoint[CHECKPOINT_KEY]["method_state"])
    evaluator = _trainer(config, run_dir, [], False)
    evaluator.validate(module, datamodule=datamodule, verbose=False)
    val = dict(module.last_metrics)
    evaluator.test(module, datamodule=datamodule, verbose=False)
    result = RunResult(
        run_dir, selected, val=val, test=dict(module.last_metrics), train_seconds=train_seconds
    )
    if evaluator.is_global_zero:
        payload = {
            "checkpoint": os.path.relpath(selected, run_dir),
            "select_on": config.trainer.select_on,
            "selected_epoch": checkpoint.get("epoch"),
            "epochs_trained": module.train_position[0],
            "global_step": trainer.global_step,
            "train_seconds": round(train_seconds, 2),
            "val": result.val,
            "test": result.test,
        }
        atomic_write_text(run_dir / METRICS_FILE, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return result


def train_from_cli(config_path: Path | None, overrides: Sequence[str], resume: Path | None) -> RunResult:
    """``wsol train``: a new run from a YAML + overrides, or ``--resume RUN_DIR`` (overrides apply on top)."""
    if resume is None:
        return train(load_config(config_path, overrides))
    run_dir = Path(resume)
    saved = run_dir / CONFIG_FILE
    if not saved.is_file():
        raise FileNotFoundError(f"{saved}: not a run folder of `wsol train` (no {CONFIG_FILE})")
    base = OmegaConf.to_container(read_yaml(saved), resolve=True)
    assert isinstance(base, dict)
    saved_method = base.get("method") or {}
    if is_registered(saved_method.get("name")):  # a run saved before options were renamed resumes
        options = current_options(saved_method["name"], saved_method.get("options") or {})
        base["method"] = {**saved_method, "options": options}
    config = load_config(config_path, overrides, base=base)
    name = config.method.name
    if not is_registered(name) and f"method.name={name}" not in [o.replace(" ", "") for o in overrides]:
        raise ValueError(
            f"{saved}: names method {name!r}, an import path; a file being loaded may not name code to run. "
            f"If you trust it, repeat it: wsol train --resume {run_dir} method.name={name}"
        )
    return train(config, run_dir=run_dir, resume=True)
