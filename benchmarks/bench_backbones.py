"""Training throughput (images/s of forward + backward + SGD step) of each backbone with a GAP head.

Prints, per backbone, the median over interleaved rounds of images per wall-clock second and per second of
this process's CPU time (on a shared machine the latter is what one dedicated core would give, with one
thread), and the ratio to ``resnet18`` measured in the same run.

    .venv/bin/python benchmarks/bench_backbones.py                      # tiny vs resnet18 at 96 px, batch 32
    .venv/bin/python benchmarks/bench_backbones.py --size 64 --batch 8 \\
        --names resnet18 tiny resnet34 resnet50 vgg16 inception_v3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from wsol.models import BACKBONES, build_classifier


def make_step(name: str, size: int, batch: int, channels_last: bool):
    torch.manual_seed(0)
    model = build_classifier(name, "gap", 10)
    images = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images).logits, labels).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", nargs="+", default=["resnet18", "tiny"], choices=sorted(BACKBONES))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = ["resnet18", *[n for n in args.names if n != "resnet18"]]
    steps = {name: make_step(name, args.size, args.batch, args.channels_last) for name in names}
    for step in steps.values():  # warm-up
        step()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    images = args.steps * args.batch
    for _ in range(args.rounds):
        for name, step in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step()
            wall[name].append(images / (time.perf_counter() - start))
            cpu[name].append(images / (time.process_time() - start_cpu))
    print(
        f"train step, {args.size} px, batch {args.batch}, {args.threads} thread(s)"
        f"{', channels_last' if args.channels_last else ''}; "
        f"median of {args.rounds} rounds × {args.steps} steps"
    )
    base_cpu = statistics.median(cpu["resnet18"])
    print(f"{'backbone':<14}{'img/s wall':>12}{'img/CPU-s':>12}{'× resnet18 (CPU)':>18}")
    for name in names:
        rate_wall, rate_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<14}{rate_wall:>12.1f}{rate_cpu:>12.1f}{rate_cpu / base_cpu:>18.2f}")


if __name__ == "__main__":
    main()
