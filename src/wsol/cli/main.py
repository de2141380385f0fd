"""The ``wsol`` command line: one sub-command module per pipeline stage, imported only for the verb that runs.

A new verb is one module defining ``register(subparsers)`` (argparse only: heavy imports belong in the
function the verb runs) plus one line in :data:`COMMANDS` (or :data:`DATA_COMMANDS` for ``wsol data ...``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

COMMANDS: dict[str, str] = {
    "train": "wsol.cli.train",
    "evaluate": "wsol.cli.evaluate",
    "localize": "wsol.cli.localize",
    "demo": "wsol.cli.demo",
    "compare": "wsol.cli.compare",
    "report": "wsol.cli.report",
    "two-stage": "wsol.cli.two_stage",
    "list": "wsol.cli.list_registries",
}
"""Verb -> module whose ``register(subparsers)`` adds it (and sets ``func`` on its parser)."""

DATA_COMMANDS: dict[str, str] = {
    "synth": "wsol.cli.data_synth",
    "import": "wsol.cli.data_import",
    "check": "wsol.cli.data_import",
    "repoint": "wsol.cli.data_repoint",
}
"""``wsol data`` verb -> module, as :data:`COMMANDS`."""


def _register(subparsers: argparse._SubParsersAction, table: dict[str, str], verb: str | None) -> None:
    """Register the module of ``verb``, or every module of ``table`` when ``verb`` is not one of its verbs
    (``--help``, or an unknown verb that argparse then reports with the full list)."""
    modules = [table[verb]] if verb in table else list(dict.fromkeys(table.values()))
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the requested verb's module is imported (all of them without one)."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    verb, data_verb = (words + [None, None])[:2]
    parser = argparse.ArgumentParser(prog="wsol", description="Weakly supervised object localization.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = commands.add_parser("data", help="generate, import and check datasets")
    if verb == "data":
        data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
        _register(data_commands, DATA_COMMANDS, data_verb)
    else:
        _register(commands, COMMANDS, verb)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``wsol`` command: run the verb of ``argv``; library errors print without a traceback."""
    args = build_parser(argv).parse_args(argv)
    # Lightning's start-up chatter (device summary, product tips) says nothing about the run; warnings stay.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    # Lightning 2.6 calls a pytree API that torch 2.13 deprecates; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        # Library errors carry the file/argument and what was expected; show them without a traceback.
        print(f"wsol {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
