"""CPU throughput of the pretrained EfficientNet-Lite presets at 224 px: training and evaluation steps in the
NCHW and channels-last memory formats, evaluation under ``torch.no_grad`` and ``torch.inference_mode``.

Each preset's method is built as the engine builds it (``wsol train --config PRESET``: its options, ImageNet
weights, its optimiser), on a synthetic batch at 224 px:

* ``train``: ``method.training_step`` (forward, loss, backward) + optimiser step, as the engine's
  ``training_step``;
* ``eval``: ``method.predict(images, classes=labels)``, what validation and testing run per batch (Lightning
  wraps them in ``torch.inference_mode``; ``no_grad`` is the previous rule of ``wsol localize``).

Rates are images per second of this process's CPU time, median over interleaved rounds (every variant once
per round, so a change of load hits all alike), i.e. what one dedicated core gives with ``--threads`` threads;
ratios are against NCHW measured in the same run. The load average is printed before and after.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_training_lite0.py [--presets cam_gap_lite0 wgap_lite0]
        [--batch 8] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.synth import ensure_synthetic
from wsol.data.transforms import TransformConfig, build_transforms
from wsol.training.config import load_config, preset_path, to_plain
from wsol.training.module import build_optimizer
from wsol.training.run import instantiate_method, pretrained_normalization


def _batch(root: Path, size: int, batch: int, normalization: dict) -> dict:
    transforms = TransformConfig.from_dict({"frame": size, **normalization})
    dataset = WSOLDataset(root, "train", build_transforms(transforms, train=False))
    return next(iter(DataLoader(dataset, batch_size=batch, collate_fn=collate)))


def _to_format(batch: dict, channels_last: bool) -> dict:
    if not channels_last:
        return batch
    return {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}


def preset_steps(preset: str, root: Path, args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    """``variant -> step`` for one preset: train and eval steps, NCHW / channels-last."""
    plain = to_plain(load_config(preset_path(preset), [f"data.root={root}"]))
    options = plain["method"]["options"]
    steps: dict[str, Callable[[], None]] = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        method = instantiate_method(plain["method"]["name"], 4, options)
        if channels_last:
            method = method.to(memory_format=torch.channels_last)
        batch = _to_format(
            _batch(root, args.size, args.batch, pretrained_normalization(method, options)), channels_last
        )
        optimizer = build_optimizer(method.parameter_groups(plain["optim"]["lr"]), plain["optim"])
        layout = "CL" if channels_last else "NCHW"

        def train(method=method, batch=batch, optimizer=optimizer) -> None:  # noqa: ANN001
            method.train()
            optimizer.zero_grad(set_to_none=True)
            method.training_step(batch, backward=lambda loss: loss.backward())
            optimizer.step()

        def evaluate(mode: Callable[[], contextlib.AbstractContextManager], method=method, batch=batch):  # noqa: ANN001, ANN202
            def step() -> None:
                method.eval()
                with mode():
                    method.predict(batch["image"], classes=batch["label"])

            return step

        steps[f"train {layout}"] = train
        steps[f"eval {layout} no_grad"] = evaluate(torch.no_grad)
        steps[f"eval {layout} inference_mode"] = evaluate(torch.inference_mode)
    return steps


def measure(steps: dict[str, Callable[[], None]], images: int, rounds: int) -> dict[str, float]:
    """``variant -> median images per CPU-second`` over interleaved rounds after one warm-up step each."""
    for step in steps.values():
        step()
    rates: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(rounds):
        for key, step in steps.items():
            start = time.process_time()
            step()
            rates[key].append(images / (time.process_time() - start))
    return {key: statistics.median(values) for key, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["cam_gap_lite0", "wgap_lite0"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{args.size} px, batch {args.batch}, {args.threads} thread(s), median of {args.rounds} interleaved "
        "rounds; images per CPU-second (× the NCHW variant of the same preset and step)"
    )
    with tempfile.TemporaryDirectory(prefix="wsol-bench-lite0-") as tmp:
        root = ensure_synthetic(Path(tmp), image_size=args.size, train=args.batch, val=4, test=4)
        for preset in args.presets:
            rates = measure(preset_steps(preset, root, args), args.batch, args.rounds)
            for key, rate in rates.items():
                base = rates["train NCHW"] if key.startswith("train") else rates["eval NCHW no_grad"]
                print(f"{preset:<22}{key:<28}{rate:8.2f} img/s {rate / base:6.2f}×")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
