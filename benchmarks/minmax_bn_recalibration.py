"""Re-evaluate trained checkpoints after recalibrating BatchNorm on clean training images (no training).

    python benchmarks/minmax_bn_recalibration.py RUN_DIR [RUN_DIR ...] [--split test]

For each ``wsol train`` run folder: test metrics of ``checkpoints/best.ckpt`` as trained, then of the same
weights with BatchNorm running statistics re-estimated from the clean training images
(``wsol.training.recalibrate``), written next to it as ``best-recalibrated.ckpt``. Prints one table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from wsol.evaluation import EvaluatorConfig
from wsol.methods.checkpoint import load_checkpoint
from wsol.training.inference import evaluate_checkpoint
from wsol.training.recalibrate import recalibrate_checkpoint
from wsol.training.run import resolve_data_root

COLUMNS = ("top1_err", "f1_pos", "f1_neg", "pxap", "max_box_acc_v2")


def _evaluate(checkpoint: Path, split: str) -> dict[str, float]:
    config = load_checkpoint(checkpoint).config
    with tempfile.TemporaryDirectory() as out:
        result = evaluate_checkpoint(
            checkpoint,
            resolve_data_root(config["data"]),
            split,
            None,
            Path(out),
            EvaluatorConfig(**dict(config.get("eval") or {})),
        ).to_dict()
    return {key: float(result[key]) for key in COLUMNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of `wsol train`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| run | BatchNorm statistics | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for run in args.runs:
        best = run / "checkpoints" / "best.ckpt"
        recalibrated = run / "checkpoints" / "best-recalibrated.ckpt"
        images = recalibrate_checkpoint(best, recalibrated)
        for label, checkpoint in (("as trained", best), (f"clean, {images} train images", recalibrated)):
            row = _evaluate(checkpoint, args.split)
            print(f"| {run.name} | {label} | " + " | ".join(f"{row[key]:.1f}" for key in COLUMNS) + " |")


if __name__ == "__main__":
    main()
