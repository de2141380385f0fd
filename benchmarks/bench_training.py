"""Training-engine overhead: ``wsol.training`` (Lightning, checkpoints, logging) vs a plain PyTorch loop.

    .venv/bin/python benchmarks/bench_training.py [--steps 40 --batch-size 32 --image-size 96 --threads 1]

Both loops train the same CAM-Avg method (tiny backbone) on the same synthetic images for the same number of
steps, in this process; the figure that matters is the ratio (engine time / plain time), measured in the same
run, since the absolute times depend on the machine's load. The engine run also writes ``last.ckpt`` every
``--checkpoint-every`` steps (atomic write + fsync) and logs to CSV and TensorBoard.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.synth import ensure_synthetic
from wsol.data.transforms import TransformConfig, build_transforms
from wsol.methods import build_method
from wsol.training.config import load_config
from wsol.training.module import build_optimizer
from wsol.training.run import train


def plain_loop(root: Path, steps: int, batch_size: int, transforms: dict) -> float:
    """Seconds for ``steps`` SGD steps of a hand-written loop (data loading included)."""
    torch.manual_seed(0)
    method = build_method("cam", 4, {"backbone": "tiny", "head": "gap"})
    optimizer = build_optimizer(
        method.parameter_groups(0.05),
        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    )
    dataset = WSOLDataset(root, "train", build_transforms(TransformConfig.from_dict(transforms), train=True))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate)
    method.train()
    done = 0
    start = time.perf_counter()
    while done < steps:
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            method.training_loss(batch).total.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start


def engine_loop(root: Path, steps: int, batch_size: int, every: int, out: Path) -> float:
    """Seconds spent in ``trainer.fit`` for ``steps`` steps (no validation)."""
    config = load_config(
        None,
        [
            f"data.root={root}",
            f"data.batch_size={batch_size}",
            "data.transforms.hflip=true",
            f"trainer.max_steps={steps}",
            "trainer.max_epochs=1000",
            "trainer.limit_val_batches=0",
            "trainer.limit_test_batches=1",
            "trainer.progress_bar=false",
            f"trainer.checkpoint_every_n_steps={every}",
            "optim.lr=0.05",
            f"output_dir={out}",
            "name=bench",
        ],
    )
    return train(config).train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="wsol-bench-training-") as tmp:
        root = ensure_synthetic(Path(tmp) / "cache", image_size=args.image_size, train=320, val=16, test=16)
        plain = plain_loop(root, args.steps, args.batch_size, {"hflip": True})
        engine = engine_loop(root, args.steps, args.batch_size, args.checkpoint_every, Path(tmp) / "runs")
        plain_again = plain_loop(root, args.steps, args.batch_size, {"hflip": True})
    baseline = min(plain, plain_again)
    images = args.steps * args.batch_size
    print(f"{args.steps} steps x {args.batch_size} images at {args.image_size} px, {args.threads} thread(s)")
    rate = images / baseline
    print(
        f"  plain PyTorch loop : {baseline:7.2f} s ({rate:6.1f} img/s; runs {plain:.2f}/{plain_again:.2f} s)"
    )
    print(f"  wsol engine        : {engine:7.2f} s ({images / engine:6.1f} img/s)")
    print(
        f"  engine / plain     : {engine / baseline:7.2f}x  (checkpoint every {args.checkpoint_every} steps)"
    )


if __name__ == "__main__":
    main()
