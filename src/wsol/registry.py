"""Lazy registries and lazy package exports: names are known at import time, objects load on first use.

A registry maps a name to ``"module:attribute"``. Listing names (``wsol list``, the ``--help`` of every
command) imports nothing, so the command line starts without torch; looking a name up imports its module.
Adding an entry stays one file plus one line.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class Registry(Mapping[str, T], Generic[T]):
    """A read-only ``name -> object`` mapping over ``{name: "module:attribute"}`` that imports on lookup.

    Iteration, ``len`` and ``in`` see the names only; ``registry[name]`` imports and returns the object, an
    unknown name raises a KeyError that lists the known ones.
    """

    def __init__(self, kind: str, entries: Mapping[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; expected one of {sorted(self._entries)}")
        return _load(self._entries[name])

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """``__getattr__`` and ``__dir__`` for a package that re-exports ``{name: "module"}`` (or
    ``"module:attribute"``) on first access (PEP 562), so that importing one of its light submodules does not
    import the heavy ones."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = exports[name]
        value = _load(target if ":" in target else f"{target}:{name}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list:
        return sorted(set(exports) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
