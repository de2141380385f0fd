"""Typed method options: small frozen dataclasses that validate themselves, built from config sections.

A method groups its keyword options into sections (YAML ``method.options.erasing.depth: 4``). :func:`section`
turns the mapping a config gives into the section's dataclass and names the full key of an unknown or invalid
entry (``method.options.erasing.depth: expected an integer >= 0, got -1``). Keys renamed when the options were
grouped (``erasing_depth`` -> ``erasing.depth``) are listed by each method class in ``RENAMED_OPTIONS``:
:func:`reject_renamed` refuses them in a user's config with the new name, :func:`upgrade_renamed` translates
them when a checkpoint written before the change is read (``wsol.methods.checkpoint``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "BackboneSpec",
    "WildcatOptions",
    "pretrained_weights",
    "reject_renamed",
    "require",
    "require_choice",
    "require_integer",
    "require_number",
    "section",
    "upgrade_renamed",
    "without_pretrained_weights",
]

OPTIONS_KEY = "method.options"
T = TypeVar("T")


def require(ok: bool, name: str, expected: str, value: Any) -> None:
    """Raise ``ValueError("name: expected …, got value")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


def require_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """``value`` must be one of ``choices``."""
    require(value in choices, name, f"one of {', '.join(map(repr, choices))}", value)


def require_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, open_low: bool = False
) -> None:
    """``value`` must be a real number (not a bool) in [low, high] (``open_low``: (low, high])."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    above = low is None or (is_number and (value > low if open_low else value >= low))
    below = high is None or (is_number and value <= high)
    bounds = [f"{'>' if open_low else '>='} {low}"] if low is not None else []
    bounds += [f"<= {high}"] if high is not None else []
    require(is_number and above and below, name, " ".join(["a number", *bounds]), value)


def require_integer(name: str, value: Any, low: int) -> None:
    """``value`` must be an integer (not a bool) >= ``low``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    require(ok, name, f"an integer >= {low}", value)


def section(cls: type[T], value: T | Mapping[str, Any] | None, key: str) -> T:
    """The ``cls`` section from a config mapping (``None``: the defaults), errors naming
    ``method.options.<key>.<field>``."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if not isinstance(value, Mapping):
        raise ValueError(f"{OPTIONS_KEY}.{key}: expected a mapping with keys {names}, got {value!r}")
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(f"{OPTIONS_KEY}.{key}.{unknown[0]}: unknown option; expected one of {names}")
    try:
        return cls(**value)
    except ValueError as err:
        raise ValueError(f"{OPTIONS_KEY}.{key}.{err}") from None


def _stale(options: Mapping[str, Any], renamed: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(old, new)`` of the renamed keys present; a section named like an old key (``size_constraint``) is
    stale only when it holds a plain value instead of a mapping."""
    return [
        (old, new)
        for old, new in renamed.items()
        if old in options and not (new.startswith(f"{old}.") and isinstance(options[old], Mapping))
    ]


def reject_renamed(options: Mapping[str, Any], renamed: Mapping[str, str]) -> None:
    """Refuse a user's config that still uses a renamed key, naming the new one."""
    stale = _stale(options, renamed)
    if stale:
        old, new = stale[0]
        others = "".join(f"; {o} -> {OPTIONS_KEY}.{n}" for o, n in stale[1:])
        was = "is now a section" if new.startswith(f"{old}.") else "was renamed"
        raise ValueError(f"{OPTIONS_KEY}.{old}: {old} {was}: use {OPTIONS_KEY}.{new}{others}")


def upgrade_renamed(options: Mapping[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    """``options`` with each renamed key moved to its new (dotted) place, for checkpoints written before the
    rename; nested sections are copied, never modified in place."""
    upgraded = {key: dict(value) if isinstance(value, Mapping) else value for key, value in options.items()}
    stale = _stale(options, renamed)
    # A plain value under a section's own name (``backbone: tiny``) moves first, so the section is a mapping.
    stale.sort(key=lambda pair: not pair[1].startswith(f"{pair[0]}."))
    for old, new in stale:
        value = upgraded.pop(old)
        *parents, leaf = new.split(".")
        target = upgraded
        for parent in parents:
            target = target.setdefault(parent, {})
        target.setdefault(leaf, value)
    return upgraded


def pretrained_weights(options: Mapping[str, Any]) -> Any:
    """The pretrained-weight option of a method (``weights``, or ``backbone.weights`` for a
    :class:`BackboneSpec` section); None when neither is set."""
    backbone = options.get("backbone")
    nested = backbone.get("weights") if isinstance(backbone, Mapping) else None
    return options.get("weights") or nested


def without_pretrained_weights(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with ``weights`` and ``backbone.weights`` set to None: pretrained weights only initialise
    a run, and rebuilding a trained method must not read or download them."""
    options = dict(options)
    if options.get("weights") is not None:
        options["weights"] = None
    backbone = options.get("backbone")
    if isinstance(backbone, Mapping) and backbone.get("weights") is not None:
        options["backbone"] = {**backbone, "weights": None}
    return options


@dataclass(frozen=True)
class BackboneSpec:
    """The encoder a method builds: ``wsol.models.build_backbone(name, large_feature_map=…, weights=…,
    **options)``. ``weights``: ``"imagenet"``, a ``.pth`` path, or ``None`` (random initialisation)."""

    name: str = "resnet18"
    weights: str | None = None
    large_feature_map: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and bool(self.name), "name", "a backbone name", self.name)
        weights = self.weights
        require(weights is None or isinstance(weights, str), "weights", "null, 'imagenet' or a path", weights)
        large = self.large_feature_map
        require(isinstance(large, bool), "large_feature_map", "true or false", large)
        require(isinstance(self.options, Mapping), "options", "a mapping", self.options)


@dataclass(frozen=True)
class WildcatOptions:
    """WILDCAT pooling head (Durand et al., CVPR 2017): ``modalities`` maps per class, top ``kmax`` / bottom
    ``kmin`` regions (a count if >= 1, else a fraction; ``kmin`` None = ``kmax``), weight ``alpha`` of the
    bottom ones, spatial ``dropout``."""

    kmax: float = 0.09
    kmin: float | None = None
    alpha: float = 0.0
    modalities: int = 5
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require_number("kmax", self.kmax, low=0.0, open_low=True)
        if self.kmin is not None:
            require_number("kmin", self.kmin, low=0.0)
        require_number("alpha", self.alpha)
        require_integer("modalities", self.modalities, 1)
        require_number("dropout", self.dropout, low=0.0, high=1.0)
