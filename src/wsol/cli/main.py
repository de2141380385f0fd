"""The ``wsol`` command line: one sub-command module per pipeline stage."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

# Each module defines ``register(subparsers)`` and sets ``func`` on its parsers; ``data_*`` modules register
# under the ``wsol data`` group instead.
COMMAND_MODULES = (
    "wsol.cli.train",
    "wsol.cli.evaluate",
    "wsol.cli.localize",
    "wsol.cli.demo",
    "wsol.cli.two_stage",
)
DATA_COMMAND_MODULES = ("wsol.cli.data_synth", "wsol.cli.data_import")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsol", description="Weakly supervised object localization.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = commands.add_parser("data", help="generate, import and check datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    for module_name in DATA_COMMAND_MODULES:
        importlib.import_module(module_name).register(data_commands)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Lightning's start-up chatter (device summary, product tips) says nothing about the run; warnings stay.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    # Lightning 2.6 calls a pytree API that torch 2.13 deprecates; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as err:
        # Library errors carry the file/argument and what was expected; show them without a traceback.
        print(f"wsol {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
