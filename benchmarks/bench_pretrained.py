"""CPU throughput of the ImageNet-pretrainable backbones at 224 px: inference and training, with and without
channels-last, as a ratio to ``resnet18`` measured in the same run.

* inference: one image at a time (the latency ``wsol localize`` sees), eval mode, ``torch.inference_mode``;
* training: forward + backward + SGD step of backbone + GAP head (10 classes), batch ``--batch``.

Rates are images per second of this process's CPU time (median over interleaved rounds), i.e. what one
dedicated core gives with one thread, which stays meaningful on a shared machine; wall-clock rates are printed
too.

    .venv/bin/python benchmarks/bench_pretrained.py
    .venv/bin/python benchmarks/bench_pretrained.py --names efficientnet_lite0 --threads 2 --batch 16
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from wsol.models import build_classifier

DEFAULT_NAMES = ("resnet18", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def _prepare(name: str, images: torch.Tensor, channels_last: bool):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_classifier(name, "gap", 10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    return model, images


def inference_step(name: str, size: int, channels_last: bool) -> Callable[[], None]:
    model, images = _prepare(name, torch.randn(1, 3, size, size), channels_last)
    model.eval()

    def step() -> None:
        with torch.inference_mode():
            model(images)

    return step


def training_step(name: str, size: int, batch: int, channels_last: bool) -> Callable[[], None]:
    model, images = _prepare(name, torch.randn(batch, 3, size, size), channels_last)
    labels = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images).logits, labels).backward()
        optimizer.step()

    return step


def measure(steps: dict[str, Callable[[], None]], images: int, repeats: int, rounds: int) -> dict[str, tuple]:
    """``key -> (median images/CPU-s, median images/wall-s)`` over interleaved rounds after a warm-up."""
    for step in steps.values():
        step()
    cpu: dict[str, list[float]] = {key: [] for key in steps}
    wall: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(rounds):
        for key, step in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                step()
            wall[key].append(images * repeats / (time.perf_counter() - start))
            cpu[key].append(images * repeats / (time.process_time() - start_cpu))
    return {key: (statistics.median(cpu[key]), statistics.median(wall[key])) for key in steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8, help="training batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = ["resnet18", *[n for n in args.names if n != "resnet18"]]
    layouts = {"contiguous": False, "channels_last": True}
    infer = measure(
        {(n, k): inference_step(n, args.size, v) for n in names for k, v in layouts.items()},
        1,
        8,
        args.rounds,
    )
    train = measure(
        {(n, k): training_step(n, args.size, args.batch, v) for n in names for k, v in layouts.items()},
        args.batch,
        1,
        args.rounds,
    )
    print(
        f"{args.size} px, {args.threads} thread(s), median of {args.rounds} rounds; images per CPU-second "
        f"(wall in brackets); inference batch 1 in inference_mode, training batch {args.batch}"
    )
    header = f"{'backbone':<20}{'params M':>9}{'stride':>7}"
    for kind in ("infer", "train"):
        header += "".join(f"{kind + ' ' + ('CL' if v else 'NCHW'):>20}" for v in layouts.values())
    print(header + f"{'infer × r18':>13}{'train × r18':>13}")
    base_infer = max(infer["resnet18", k][0] for k in layouts)
    base_train = max(train["resnet18", k][0] for k in layouts)
    for name in names:
        net = build_classifier(name, "gap", 10).backbone
        params = sum(p.numel() for p in net.parameters()) / 1e6
        row = f"{name:<20}{params:>9.2f}{net.stride:>7}"
        for table in (infer, train):
            row += "".join(f"{table[name, k][0]:>11.1f} ({table[name, k][1]:>5.1f})" for k in layouts)
        best_infer = max(infer[name, k][0] for k in layouts)
        best_train = max(train[name, k][0] for k in layouts)
        print(row + f"{best_infer / base_infer:>13.2f}{best_train / base_train:>13.2f}")


if __name__ == "__main__":
    main()
