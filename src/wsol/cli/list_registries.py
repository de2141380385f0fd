"""``wsol list``: every registry of the library (the names a config or a flag may use), without torch."""

from __future__ import annotations

import argparse
import json
from typing import Any


def registries() -> dict[str, list[str]]:
    """Registry title -> sorted names."""
    from wsol.cams import CAM_METHODS
    from wsol.data.importers import IMPORTERS
    from wsol.evaluation.catalogue import result_metrics
    from wsol.methods import METHODS
    from wsol.models.backbones import BACKBONES
    from wsol.models.heads import HEADS
    from wsol.training.config import preset_names

    return {
        "methods": sorted(METHODS),
        "heads": sorted(HEADS),
        "backbones": sorted(BACKBONES),
        "cams": sorted(CAM_METHODS),
        "importers": sorted(IMPORTERS),
        "presets": preset_names(),
        "metrics": sorted(result_metrics()),
    }


def register(commands: Any) -> None:
    """Add the ``list`` verb to the command parsers."""
    parser = commands.add_parser(
        "list",
        help="list methods, heads, backbones, CAMs, importers, presets and metrics",
        description="Print every registry: the names a config, a preset or a command-line flag may use.",
    )
    parser.add_argument("--json", action="store_true", help="print the registries as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every registry; the exit status."""
    tables = registries()
    if args.json:
        print(json.dumps(tables, indent=2))
        return 0
    for title, names in tables.items():
        print(f"{title} ({len(names)}): {', '.join(names)}")
    return 0
