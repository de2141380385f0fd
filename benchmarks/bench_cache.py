"""Epoch time with and without the decoded cache (``wsol.data.cache``), and with loader workers.

    .venv/bin/python benchmarks/bench_cache.py DATASET [--frame 224 --batch-size 32 --threads 1 --workers 0 1]

DATASET is any imported dataset (e.g. ``wsol data import busi ...``). Each configuration runs one training
epoch of CAM-Avg on the ``tiny`` backbone (forward, backward, SGD step) over the train split, with the
``hflip`` transform and the ``frame`` size policy, and one pass of the loader alone. Printed: seconds per
epoch (wall, and CPU of this process plus its loader workers: on a shared machine the CPU figure is the
stable one), and the ratios to the uncached, in-process loader measured in the same run. The cache is built
once before the timed epochs (its build time is printed too).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.transforms import TransformConfig, build_transforms
from wsol.methods import build_method
from wsol.training.module import build_optimizer


def epoch(dataset: WSOLDataset, batch_size: int, workers: int, train: bool) -> tuple[float, float]:
    """(wall s, CPU s) of one pass over ``dataset``; with ``train`` one SGD step per batch."""
    torch.manual_seed(0)
    method = build_method("cam", dataset.num_classes, {"backbone": "tiny", "head": "gap"})
    optimizer = build_optimizer(
        method.parameter_groups(0.01),
        {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate, num_workers=workers)
    wall, cpu = time.perf_counter(), _cpu()
    for batch in loader:
        if train:
            optimizer.zero_grad(set_to_none=True)
            method.training_loss(batch).total.backward()
            optimizer.step()
    return time.perf_counter() - wall, _cpu() - cpu


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the loader workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--frame", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transform = build_transforms(TransformConfig(hflip=True, frame=args.frame), train=True)
    plain = WSOLDataset(args.root, "train", transform)
    cached = WSOLDataset(args.root, "train", transform)
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        cached.use_cache(cache_dir)
        print(f"cache build: {time.perf_counter() - start:.1f} s for {len(cached)} images")
        rows = []
        for train in (False, True):
            for name, dataset in (("no cache", plain), ("cache", cached)):
                for workers in args.workers:
                    wall, cpu = epoch(dataset, args.batch_size, workers, train)
                    rows.append((("train epoch" if train else "loader only"), name, workers, wall, cpu))
    print("| pass | images | workers | wall s | CPU s (incl. workers) | × wall | × CPU |")
    print("|---|---|---|---|---|---|---|")
    for kind, name, workers, wall, cpu in rows:
        base = next(r for r in rows if r[0] == kind and r[1] == "no cache" and r[2] == args.workers[0])
        ratios = f"{wall / base[3]:.2f} | {cpu / base[4]:.2f}"
        print(f"| {kind} | {name} | {workers} | {wall:.2f} | {cpu:.2f} | {ratios} |")


if __name__ == "__main__":
    main()
