"""Cost of F-CAM's CPU dense-CRF loss (``wsol.methods.crf_loss``) against the rest of the decoder's step.

One decoder-stage step of F-CAM (Belharbi et al., WACV 2022, arXiv 2109.07069) on a batch of random images:
frozen encoder forward, decoder forward, seeds, partial CE and size constraint, backward ("rest of the step"),
then the CRF loss forward + backward at each ``--scales`` factor (the loss is evaluated on the image and the
probabilities resized by that factor). Median of ``--repeats`` timings, in the same process; the ratio is CRF
time / rest-of-step time. The exact W·P is O((s²HW)²) per image: halving the scale divides its cost by 16.

Usage: ``python benchmarks/bench_crf_loss.py [--size 96] [--batch 32] [--backbone tiny] [--threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from wsol.methods.crf_loss import CRFConfig, dense_crf_loss
from wsol.methods.fcam import FCAM


def median_seconds(work: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    method = FCAM(4, backbone=args.backbone, classifier_epochs=1, loss={"crf": 0.0})
    method.on_train_epoch_end(0)  # decoder stage
    method.train()
    batch = {"image": torch.randn(args.batch, 3, args.size, args.size), "label": torch.arange(args.batch) % 4}

    def rest_of_step() -> None:
        method.zero_grad(set_to_none=True)
        method.training_loss(batch).total.backward()

    rest = median_seconds(rest_of_step, args.repeats)
    print(f"batch {args.batch} x {args.size}px, {args.backbone}, {args.threads} thread(s)")
    print(f"rest of the decoder step: {rest:.3f} s")
    images = method.raw_rgb(batch["image"])
    for scale in args.scales:
        probs = torch.rand(args.batch, 2, args.size, args.size).softmax(dim=1).requires_grad_(True)
        config = CRFConfig(sigma_xy=100.0 * args.size / 224.0, scale=scale)

        def crf_step(config: CRFConfig = config, probs: torch.Tensor = probs) -> None:
            dense_crf_loss(probs, images, config).backward()

        seconds = median_seconds(crf_step, args.repeats)
        side = round(args.size * scale)
        print(f"CRF loss at scale {scale} ({side}x{side}): {seconds:.3f} s  = x{seconds / rest:.2f} the rest")


if __name__ == "__main__":
    main()
