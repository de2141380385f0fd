"""``wsol compare RUN…``: mean ± sd per method over seeds and paired bootstrap intervals of differences."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``compare`` verb to the command parsers."""
    parser = commands.add_parser(
        "compare",
        help="aggregate evaluations over seeds and compare methods (Markdown and JSON)",
        description=(
            "Each RUN is a folder written by `wsol evaluate` (or a `wsol train --seeds` run with its "
            "evaluation/). Runs are grouped by method label; prints a Markdown table of mean ± sd "
            "(validation τ, oracle τ beside) and, for each pair of methods on the same images, the paired "
            "bootstrap 95 % interval of each difference. --out DIR also writes compare.md and compare.json."
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="evaluation or run folders")
    parser.add_argument("--out", type=Path, default=None, help="folder for compare.md and compare.json")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    parser.set_defaults(func=run)


def write_comparison(runs: list[Path], out: Path | None, resamples: int = 2000, seed: int = 0) -> str:
    """Compare ``runs``, write ``compare.md`` and ``compare.json`` into ``out`` (if given), return the
    Markdown."""
    from wsol.io import atomic_write_text
    from wsol.report.compare import compare, load_run, markdown

    if resamples < 1:
        raise ValueError(f"--resamples: expected a positive count, got {resamples}")
    document = compare([load_run(path) for path in runs], resamples=resamples, seed=seed)
    text = markdown(document)
    if out is not None:
        atomic_write_text(out / "compare.md", text)
        atomic_write_text(out / "compare.json", json.dumps(document, indent=2, sort_keys=True) + "\n")
    return text


def run(args: argparse.Namespace) -> int:
    """Print the comparison of the runs (and write it with ``--out``); the exit status."""
    print(write_comparison(args.runs, args.out, args.resamples, args.seed), end="")
    if args.out is not None:
        print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.json'}")
    return 0
