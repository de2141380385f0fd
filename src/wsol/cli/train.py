"""``wsol train``: train a method from a YAML config with ``key=value`` overrides, or resume a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "train",
        help="train a method (default: CAM-Avg on the synthetic benchmark)",
        description=(
            "Train from a YAML config (a file, or a preset name from wsol/configs) with overrides, e.g. "
            "`wsol train --config cam_gap optim.lr=0.1 trainer.max_epochs=3`. Without --config "
            "the defaults train CAM-Avg on the synthetic benchmark. --resume RUN_DIR continues a killed run "
            "from RUN_DIR/checkpoints/last.ckpt (overrides apply on top of its saved config)."
        ),
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML config file or preset name (e.g. minmax_entropy)"
    )
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="run folder to continue")
    parser.add_argument(
        "--allow-overlap",
        action="store_true",
        help="train although an image is in two splits (a warning instead of an error; data.allow_overlap)",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dot-list)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsol.training.module import NonFiniteLossError
    from wsol.training.run import is_launcher, train_from_cli

    try:
        overrides = [*args.overrides, *(["data.allow_overlap=true"] if args.allow_overlap else [])]
        result = train_from_cli(args.config, overrides, args.resume)
    except NonFiniteLossError as err:
        print(f"wsol train: error: {err}", file=sys.stderr)
        return 3
    if is_launcher():
        summary = {"run_dir": str(result.run_dir), "checkpoint": str(result.checkpoint), **result.test}
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
