"""``wsol report RUN… --out DIR``: a static HTML report of evaluations (``wsol.report.html``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``report`` verb to the command parsers."""
    parser = commands.add_parser(
        "report",
        help="write a static HTML report (metrics, curves, per-image table with overlays, provenance)",
        description=(
            "Each RUN is a folder written by `wsol evaluate` (or a `wsol train --seeds` run with its "
            "evaluation/). Writes DIR/index.html and DIR/assets/, which open from disk in any browser. "
            "Overlays need the dataset (from the provenance record) and the maps (`wsol evaluate --export` "
            "or the --maps folder)."
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="evaluation or run folders")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--overlays", type=int, default=300, help="overlays drawn per method (default 300)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.set_defaults(func=run)


def write_report(runs: list[Path], out: Path, overlays: int = 300, resamples: int = 2000) -> Path:
    """Build the HTML report of ``runs`` in ``out``; the path of its index page."""
    from wsol.report.compare import load_run
    from wsol.report.html import ReportOptions, build_report

    if overlays < 0 or resamples < 1:
        raise ValueError(f"--overlays/--resamples: expected >= 0 and >= 1, got {overlays} and {resamples}")
    options = ReportOptions(overlays=overlays, resamples=resamples)
    return build_report([load_run(path) for path in runs], out, options)


def run(args: argparse.Namespace) -> int:
    """Write the report and print where; the exit status."""
    print(f"wrote {write_report(args.runs, args.out, args.overlays, args.resamples)}")
    return 0
