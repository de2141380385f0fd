"""``wsol train``: train a method from a YAML config with ``key=value`` overrides, or resume a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SIGTERM_EXIT = 128 + 15
"""Exit status of a run stopped by SIGTERM (the shell's convention): no scheduler may read it as success."""


def register(commands: Any) -> None:
    """Add the ``train`` verb to the command parsers."""
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
    from wsol.training.config import preset_names

    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"YAML config file or preset name, one of: {', '.join(preset_names())}",
    )
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="run folder to continue")
    parser.add_argument(
        "--allow-overlap",
        action="store_true",
        help="train although an image is in two splits (a warning instead of an error; data.allow_overlap)",
    )
    parser.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,…",
        help="train one run per seed (named NAME-seedS), evaluate each into RUN/evaluation/ (τ chosen on "
        "validation, per-image statistics, provenance) and print `wsol compare` of the runs",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dot-list)")
    parser.set_defaults(func=run)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; raises ValueError naming ``--seeds`` otherwise."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: expected distinct integers such as 0,1,2, got {text!r}")
    return seeds


def _base_name(args: argparse.Namespace) -> str:
    names = [item.partition("=")[2] for item in args.overrides if item.startswith("name=")]
    if names and names[-1]:
        return names[-1]
    return Path(args.config).stem if args.config is not None else "run"


def evaluate_trained_run(
    run_dir: Path, checkpoint: Path, export: bool = False, cam: str | None = None
) -> Path:
    """Evaluate ``checkpoint`` on the run's test split, τ chosen on its validation split, into
    ``run_dir/evaluation`` (with ``export``, also the predictions: the maps the report draws); with ``cam``,
    that extractor's maps into ``run_dir/evaluation_CAM``."""
    from omegaconf import OmegaConf

    from wsol.evaluation import EvaluatorConfig
    from wsol.report.compare import EVALUATION_DIR
    from wsol.training.evaluate_run import EvaluationRequest, evaluate_run
    from wsol.training.run import CONFIG_FILE, resolve_data_root

    config = OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE), resolve=True)
    assert isinstance(config, dict)
    data = config["data"]
    request = EvaluationRequest(
        checkpoint=checkpoint,
        data_root=resolve_data_root(data),
        split=data["test_split"],
        out_dir=run_dir / (EVALUATION_DIR if cam is None else f"{EVALUATION_DIR}_{cam}"),
        config=EvaluatorConfig(**config["eval"]),
        cam=cam,
        val_split=data["val_split"],
        export=export,
    )
    evaluate_run(request)
    return request.out_dir


def _train_seeds(args: argparse.Namespace, overrides: list[str]) -> int:
    from wsol.cli.compare import write_comparison
    from wsol.training.run import is_launcher, train_from_cli

    if args.resume is not None:
        raise ValueError("--seeds: not with --resume (resume each seed's run folder on its own)")
    seeds = parse_seeds(args.seeds)
    base = _base_name(args)
    run_dirs = []
    for seed in seeds:
        per_seed = [*overrides, f"seed={seed}", f"name={base}-seed{seed}"]
        result = train_from_cli(args.config, per_seed, None)
        if is_launcher():
            evaluation = evaluate_trained_run(result.run_dir, result.checkpoint, export=seed == seeds[0])
            print(f"[seeds] seed {seed}: {result.run_dir}, evaluation in {evaluation}")
            run_dirs.append(result.run_dir)
    if run_dirs:
        print(write_comparison(run_dirs, None), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    """Train (or resume) the configured run(s); the exit status."""
    from wsol.training.module import NonFiniteLossError
    from wsol.training.run import TrainingInterruptedError, is_launcher, train_from_cli

    try:
        overrides = [*args.overrides, *(["data.allow_overlap=true"] if args.allow_overlap else [])]
        if args.seeds is not None:
            return _train_seeds(args, overrides)
        result = train_from_cli(args.config, overrides, args.resume)
    except NonFiniteLossError as err:
        print(f"wsol train: error: {err}", file=sys.stderr)
        return 3
    except TrainingInterruptedError as err:
        print(f"wsol train: {err}", file=sys.stderr)
        return SIGTERM_EXIT
    if is_launcher():
        summary = {"run_dir": str(result.run_dir), "checkpoint": str(result.checkpoint), **result.test}
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
