"""Training configuration: a structured OmegaConf default merged with a YAML file and command-line overrides.

``load_config(path, ["optim.lr=0.1", "trainer.max_epochs=3"])`` returns a validated ``DictConfig``; unknown
keys and values of the wrong type are errors that name the key and where it came from. The sections mirror the
papers' presets (``docs/training.md``): SGD + Nesterov with a floored step decay (min-max entropy note §3,
wsolevaluation's protocol, Choe et al. CVPR 2020, arXiv 2001.07437).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wsol.evaluation.catalogue import selection_modes

SELECTION_MODES: dict[str, str] = selection_modes()
"""Model-selection keys accepted by ``trainer.select_on`` and whether lower or higher is better (from the
metric catalogue, ``wsol.evaluation.catalogue``)."""

SELECTION_TIES = ("earliest", "latest")
"""``trainer.select_ties``: which epoch wins when the selection value ties the best so far."""


@dataclass
class DataConfig:
    """Where the images come from and how they are batched.

    ``root: null`` trains on the embedded synthetic benchmark, generated once into ``cache_dir`` with the
    ``synthetic`` options (keyword arguments of ``wsol.data.ensure_synthetic``). ``transforms`` are the fields
    of ``wsol.data.transforms.TransformConfig`` (empty: the dataset's suggested transform). ``batch_size`` is
    per process (DDP: the global batch is devices x batch_size). ``sampler: class_balanced`` draws training
    batches of ``images_per_class`` images from each of ``batch_size // images_per_class`` classes (triplet
    losses; ``wsol.methods.triplets.ClassBalancedBatchSampler``; one process only). An image listed in two
    of the three splits stops the run unless ``allow_overlap`` (then it is a warning). ``frame_size``: the
    square frame that images of varying sizes are resized to when the transforms fix no size
    (``wsol.data.size_policy``). ``cache``: decode each split once into a memory-mapped uint8 cache under
    ``cache_dir`` (``wsol.data.cache``). ``num_workers``: loader processes; ``null`` picks
    :func:`wsol.training.datamodule.default_workers` (0 with the cache, else 1 per spare core, at most 2).
    """

    root: str | None = None
    cache_dir: str | None = None
    synthetic: dict[str, Any] = field(default_factory=dict)
    transforms: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    eval_batch_size: int | None = None
    sampler: str | None = None
    images_per_class: int = 2
    num_workers: int | None = None
    frame_size: int = 224
    cache: bool = True
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    allow_overlap: bool = False


@dataclass
class MethodConfig:
    """``name`` is a key of ``wsol.methods.METHODS`` (or ``package.module:Class``); ``options`` its keyword
    arguments, sections of a method's typed options as nested mappings (``options.erasing.depth``)."""

    name: str = "cam"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """SGD (Nesterov) or Adam; lr x ``gamma`` every ``step_size`` epochs, floored at ``min_lr`` (MyStepLR)."""

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    step_size: int = 40
    gamma: float = 0.1
    min_lr: float = 1e-7


@dataclass
class TrainerConfig:
    """Lightning trainer settings plus model selection, early stopping and checkpoint frequency.

    ``select_on`` is one of :data:`SELECTION_MODES`; ``select_ties`` (:data:`SELECTION_TIES`) keeps the
    earliest (Lightning's rule) or the latest (the min-max entropy reference code's ``<=``) of tied values;
    ``patience`` (epochs without improvement of it) enables early stopping; ``checkpoint_every_n_steps`` is
    how often ``last.ckpt`` is refreshed inside an epoch.
    ``limit_*_batches`` (an int count or a float fraction) are for quick runs and tests.
    ``channels_last`` runs the method's 4-D weights and the image batches in the channels-last memory format
    (faster convolutions on CPU: ``benchmarks/bench_training_lite0.py``; results equal to float rounding).
    """

    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = True
    select_on: str = "val/error"
    select_ties: str = "earliest"
    patience: int | None = None
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 50
    check_val_every_n_epoch: int = 1
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    progress_bar: bool = True
    channels_last: bool = True


@dataclass
class TrainConfig:
    """The whole run. ``name: null`` names the run folder ``<method>-<timestamp>`` under ``output_dir``."""

    seed: int = 0
    name: str | None = None
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: dict[str, Any] = field(default_factory=dict)


def _merge(base: DictConfig, other: DictConfig, source: str) -> DictConfig:
    try:
        merged = OmegaConf.merge(base, other)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        reason = str(err).splitlines()[0]
        raise ValueError(f"{source}: invalid config key {key!r}: {reason}") from None
    assert isinstance(merged, DictConfig)
    return merged


INTEGER_BOUNDS: tuple[tuple[str, int, tuple[int | None, ...]], ...] = (
    ("trainer.max_epochs", 1, ()),
    ("trainer.max_steps", 1, (-1,)),
    ("trainer.check_val_every_n_epoch", 1, ()),
    ("trainer.checkpoint_every_n_steps", 1, ()),
    ("trainer.log_every_n_steps", 1, ()),
    ("trainer.num_nodes", 1, ()),
    ("trainer.patience", 0, (None,)),
    ("data.batch_size", 1, ()),
    ("data.eval_batch_size", 1, (None,)),
    ("data.frame_size", 1, ()),
    ("data.images_per_class", 1, ()),
    ("data.num_workers", 0, (None,)),
)
"""Integer keys: (key, smallest valid value, also accepted: -1 = no step limit, null = off/default)."""


def validate_config(config: DictConfig) -> None:
    """Cross-field checks that the schema's types cannot express; raises ValueError naming the key."""
    if config.trainer.select_on not in SELECTION_MODES:
        raise ValueError(
            f"trainer.select_on: {config.trainer.select_on!r} is not a selection key; "
            f"expected one of {', '.join(SELECTION_MODES)}"
        )
    if config.trainer.select_ties not in SELECTION_TIES:
        raise ValueError(
            f"trainer.select_ties: expected one of {', '.join(SELECTION_TIES)}, "
            f"got {config.trainer.select_ties!r}"
        )
    for key, minimum, also in INTEGER_BOUNDS:
        value = OmegaConf.select(config, key)
        if value not in also and value < minimum:
            alternatives = "".join(f" or {'null' if other is None else other}" for other in also)
            raise ValueError(f"{key}: expected an integer >= {minimum}{alternatives}, got {value}")
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = config.trainer[key]
        fewest = 0 if key == "limit_val_batches" else 1  # 0 validation batches: select the last epoch
        whole = isinstance(value, int) and value >= fewest
        if value is not None and not whole and not (isinstance(value, float) and 0 < value <= 1):
            raise ValueError(
                f"trainer.{key}: expected null, a number of batches or a fraction in (0, 1], got {value!r}"
            )
    check_method_options(config)
    if config.data.sampler not in (None, "class_balanced"):
        raise ValueError(f"data.sampler: expected null or 'class_balanced', got {config.data.sampler!r}")
    if config.optim.name not in ("sgd", "adam"):
        raise ValueError(f"optim.name: expected 'sgd' or 'adam', got {config.optim.name!r}")
    if config.optim.lr <= 0 or config.optim.step_size < 1 or not 0 < config.optim.gamma <= 1:
        raise ValueError(
            "optim: expected lr > 0, step_size >= 1 and 0 < gamma <= 1, got "
            f"lr={config.optim.lr}, step_size={config.optim.step_size}, gamma={config.optim.gamma}"
        )


def check_method_options(config: DictConfig) -> None:
    """Refuse ``method.options`` keys that a registered method renamed (its ``RENAMED_OPTIONS``), naming the
    new key: ``erasing_depth was renamed: use method.options.erasing.depth``."""
    from wsol.methods import is_registered, method_class
    from wsol.methods.options import reject_renamed

    if is_registered(config.method.name):
        reject_renamed(config.method.options, method_class(config.method.name).RENAMED_OPTIONS)


PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"
"""The presets shipped with the package (``src/wsol/configs``; paper presets under ``paper/``)."""


def preset_dirs() -> list[Path]:
    """Where preset YAMLs are looked up: ``$WSOL_CONFIG_DIR``, then the package's presets."""
    dirs = [PRESET_DIR]
    if os.environ.get("WSOL_CONFIG_DIR"):
        dirs.insert(0, Path(os.environ["WSOL_CONFIG_DIR"]))
    return dirs


def preset_names() -> list[str]:
    """Every preset name of :func:`preset_dirs` (``cam_gap``, ``paper/glas_minmax``, ...), sorted."""
    return sorted(
        {
            path.relative_to(folder).with_suffix("").as_posix()
            for folder in preset_dirs()
            if folder.is_dir()
            for path in folder.rglob("*.yaml")
        }
    )


def preset_path(name: str) -> Path:
    """The YAML of preset ``name``: ``cam_gap`` -> ``wsol/configs/cam_gap.yaml``; ``paper/glas_minmax``."""
    for folder in preset_dirs():
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    available = sorted({p.stem for folder in preset_dirs() if folder.is_dir() for p in folder.glob("*.yaml")})
    raise FileNotFoundError(
        f"preset {name!r}: no {name}.yaml in {', '.join(map(str, preset_dirs()))}; available: {available}"
    )


def read_yaml(path: Path) -> DictConfig:
    """A YAML mapping; syntax errors name ``file:line:column`` (PyYAML's marks are 0-based)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where}: not valid YAML: {problem}") from None
    except (OmegaConfBaseException, ValueError) as err:
        raise ValueError(f"{path}: not a valid YAML config ({err})") from None
    if not isinstance(loaded, DictConfig):
        raise ValueError(f"{path}: expected a mapping at the top level, got a list")
    return loaded


def load_config(
    path: Path | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | DictConfig | None = None,
) -> DictConfig:
    """Defaults ← ``base`` (e.g. a saved run's config) ← YAML file ``path`` ← dotlist ``overrides``."""
    config = OmegaConf.structured(TrainConfig)
    if base is not None:
        config = _merge(config, OmegaConf.create(dict(base)), "saved config")
    if path is not None:
        path = Path(path)
        if not path.is_file() and path.suffix == "":
            path = preset_path(str(path))  # a preset name such as `minmax_entropy` or `paper/glas_minmax`
        config = _merge(config, read_yaml(path), str(path))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected KEY=VALUE (e.g. optim.lr=0.1)")
        config = _merge(config, OmegaConf.from_dotlist([item]), f"override {item!r}")
    validate_config(config)
    return config


def to_plain(config: DictConfig) -> dict[str, Any]:
    """The config as builtin containers (safe inside ``weights_only`` checkpoints)."""
    plain = OmegaConf.to_container(config, resolve=True)
    assert isinstance(plain, dict)
    return plain
