"""``wsol data import NAME --src PATH --out DIR`` and ``wsol data check DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wsol.data.importers import IMPORTERS, import_dataset


def register(data_subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` and ``check`` commands to the ``wsol data`` group."""
    importer = data_subparsers.add_parser(
        "import",
        help="convert a dataset from its official layout into the library's format",
        description="Convert a dataset from its official layout (docs/importers.md) to the library's format.",
    )
    importer.add_argument(
        "name", choices=sorted(IMPORTERS), metavar="NAME", help=f"one of {', '.join(IMPORTERS)}"
    )
    importer.add_argument(
        "--src", type=Path, required=True, help="the dataset's folder in its official layout"
    )
    importer.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder: new, empty, or a dataset to replace with --force",
    )
    importer.add_argument(
        "--force", action="store_true", help="replace an existing dataset of this library at --out"
    )
    importer.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the drawn splits (default: the paper's split for glas/cub5, seed 0 otherwise)",
    )
    importer.add_argument(
        "--copy", action="store_true", help="copy the images instead of referencing the source"
    )
    importer.add_argument("--quiet", action="store_true", help="no progress bar")
    importer.set_defaults(func=_run_import)

    checker = data_subparsers.add_parser(
        "check",
        help="validate a dataset and print a summary",
        description="Validate a dataset in the library's format and print counts, mask coverage and sizes.",
    )
    checker.add_argument("root", type=Path, metavar="DIR", help="dataset folder (with dataset.json)")
    checker.add_argument(
        "--decode", action="store_true", help="decode every image fully (default: headers only)"
    )
    checker.add_argument("--json", action="store_true", help="print the summary as JSON")
    checker.add_argument("--quiet", action="store_true", help="no progress bar")
    checker.set_defaults(func=_run_check)


def _run_import(args: argparse.Namespace) -> int:
    report = import_dataset(
        args.name,
        args.src,
        args.out,
        seed=args.seed,
        copy=args.copy,
        progress=not args.quiet,
        overwrite=args.force,
    )
    print(report.format())
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from wsol.data.check import check_dataset

    report = check_dataset(args.root, decode=args.decode, progress=not args.quiet)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format())
    if not report.ok:
        print(f"wsol data check: {len(report.problems)} problem(s) in {args.root}", file=sys.stderr)
        return 1
    return 0
