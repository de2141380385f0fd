"""Synthetic benchmark figures: generation speed, and headroom for WSOL (what plain CAM gets on it).

    .venv/bin/python benchmarks/bench_synth.py speed [--images 1000 --image-size 128]
    .venv/bin/python benchmarks/bench_synth.py transforms [--samples 300]
    .venv/bin/python benchmarks/bench_synth.py headroom [--epochs 15 --preset natural]

``speed`` prints images/s per preset for a full ``generate_synthetic`` (drawing + PNG writes + metadata) and,
as a baseline measured in the same run, the PNG encoding/writing of the same images alone.

``headroom`` trains a CAM network (the project's ``tiny`` backbone + GAP + linear) on the default dataset and
prints: test accuracy, PxAP of its CAM, PxAP of the
"all-ones" and of an "oracle part" map (1 on the glyph boxes only), and where the CAM mass goes (glyph, rest
of the object, distractors, other background). A benchmark with headroom has high accuracy, CAM mass
concentrated on the glyph, PxAP well below 100, and CAM mass on distractors.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from wsol.data import TransformConfig, WSOLDataset, build_transforms, collate, read_parts
from wsol.data.images import write_png
from wsol.data.synth import PRESETS, SynthConfig, generate_synthetic, iter_split
from wsol.models import build_backbone


def speed(images: int, image_size: int) -> None:
    print(f"generation of {images} images at {image_size} px (train/val/test = 60/10/30 %), 1 process")
    print("  (CPU s = process time, independent of other load on the machine; wall s depends on it)")
    for preset in PRESETS:
        config = SynthConfig(
            preset=preset,
            image_size=image_size,
            train=int(images * 0.6),
            val=int(images * 0.1),
            test=images - int(images * 0.6) - int(images * 0.1),
        )
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu = time.perf_counter(), time.process_time()
            generate_synthetic(Path(tmp) / "ds", config)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            samples = list(iter_split(config, "test"))
            png = time.process_time()
            for index, sample in enumerate(samples):
                write_png(Path(tmp) / "png" / f"{index}.png", sample.image)
                write_png(Path(tmp) / "png" / f"{index}_m.png", sample.instances)
            png = (time.process_time() - png) / len(samples) * images
        print(
            f"  {preset:14s} {images / cpu:6.1f} images/CPU-s ({cpu:5.1f} CPU s, {wall:5.1f} wall s); "
            f"PNG encoding+writes alone {images / png:6.1f} images/CPU-s = {100 * png / cpu:4.1f} % of it"
        )


def transforms(samples: int) -> None:
    """CPU ms per training sample of the ``synthetic-d4`` preset (pad 12.5 %, crop 96, flips, rot90) at 96 px,
    against the same random ops through kornia's ``AugmentationSequential`` (image, mask, boxes)."""
    torch.set_num_threads(1)
    ours = build_transforms(TransformConfig.from_dict({"preset": "synthetic-d4"}), train=True)
    kornia_ops = K.AugmentationSequential(
        K.RandomCrop((96, 96)),
        K.RandomHorizontalFlip(),
        K.RandomVerticalFlip(),
        K.RandomRotation90(times=(0, 3), p=1.0),
        data_keys=["input", "mask", "bbox_xyxy"],
    )
    image, masks = torch.rand(3, 120, 120), torch.zeros(2, 120, 120)
    boxes = torch.tensor([[20.0, 30.0, 60.0, 70.0]])
    start = time.process_time()
    for seed in range(samples):
        ours(
            image[:, 12:108, 12:108],
            masks[:1, 12:108, 12:108],
            masks[1:, 12:108, 12:108] > 0,
            boxes,
            seed=seed,
        )
    mine = (time.process_time() - start) / samples * 1000
    start = time.process_time()
    for _ in range(samples):
        kornia_ops(image[None], masks[None], boxes[None])
    baseline = (time.process_time() - start) / samples * 1000
    print(f"synthetic-d4 training transform: {mine:.2f} CPU ms/sample (pad, crop, flips, rot90, normalise)")
    print(f"kornia AugmentationSequential, crop + flips + rot90 only: {baseline:.2f} CPU ms/sample")
    print(f"ratio kornia / ours: {baseline / mine:.1f}x")


class _CAMNet(nn.Module):
    """The project's ``tiny`` backbone (stride 8) → GAP → Linear: classic CAM (Zhou et al. 2016)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = build_backbone("tiny")
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        cams = torch.einsum("bchw,kc->bkhw", features, self.fc.weight)
        return self.fc(features.mean((2, 3))), cams


def _pxap(scores: np.ndarray, truth: np.ndarray, bins: int = 1000) -> float:
    """Pixel average precision over the pooled pixels (wsolevaluation's MaskEvaluator, step integral)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    pos = np.histogram(scores[truth], edges)[0][::-1].cumsum()
    neg = np.histogram(scores[~truth], edges)[0][::-1].cumsum()
    precision = pos / np.maximum(pos + neg, 1)
    recall = pos / max(truth.sum(), 1)
    return float(100 * np.sum(precision * np.diff(recall, prepend=0.0)))


def _train(model: nn.Module, train: WSOLDataset, epochs: int, lr: float) -> float:
    """Train with SGD + one-cycle schedule; the seconds it took."""
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4, nesterov=True)
    steps = epochs * -(-len(train) // 32)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps)
    start = time.perf_counter()
    for epoch in range(epochs):
        train.set_epoch(epoch)
        model.train()
        losses = []
        for batch in DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate):
            logits, _ = model(batch["image"])
            loss = F.cross_entropy(logits, batch["label"])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        print(f"  epoch {epoch}: training loss {np.mean(losses):.3f}", flush=True)
    return time.perf_counter() - start


def _test_maps(
    model: nn.Module, root: Path, test: WSOLDataset
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Correct classifications, min-max CAMs of the label, truth masks and region ids (0 glyph, 1 object,
    2 distractor, 3 other background) of the test split."""
    model.eval()
    parts = read_parts(root, "test")
    correct, maps, truths, region_ids = 0, [], [], []
    with torch.no_grad():
        for batch in DataLoader(test, batch_size=50, collate_fn=collate):
            logits, cams = model(batch["image"])
            correct += int((logits.argmax(1) == batch["label"]).sum())
            cam = cams[torch.arange(len(cams)), batch["label"]][:, None]
            cam = F.interpolate(cam, size=batch["image"].shape[-2:], mode="bilinear", align_corners=False)[
                :, 0
            ]
            low = cam.flatten(1).min(1).values[:, None, None]
            high = cam.flatten(1).max(1).values[:, None, None]
            maps.append(((cam - low) / (high - low).clamp_min(1e-12)).numpy())
            truths.append(batch["mask"][:, 0].numpy() > 0)
            for image_id, mask in zip(batch["image_id"], batch["mask"][:, 0].numpy() > 0, strict=True):
                region = np.where(mask, 1, 3).astype(np.uint8)  # 1 object, 3 background
                for kind, (x0, y0, x1, y1) in parts[image_id]:
                    region[y0:y1, x0:x1] = 0 if kind == "part" else 2  # 0 glyph, 2 distractor
                region_ids.append(region)
    return correct, np.concatenate(maps), np.concatenate(truths), np.stack(region_ids)


def headroom(preset: str, epochs: int, threads: int, lr: float) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    config = SynthConfig(preset=preset)
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic(Path(tmp) / "ds", config)
        train_tf = build_transforms(TransformConfig.from_dict({"preset": "synthetic"}), train=True)
        train = WSOLDataset(root, "train", train_tf)
        test = WSOLDataset(root, "test")
        model = _CAMNet(config.num_classes)
        train_time = _train(model, train, epochs, lr)
        correct, scores, truth, region = _test_maps(model, root, test)
        oracle = (region == 0).astype(np.float32)
        area = np.bincount(region.ravel(), minlength=4) / region.size
        mass = np.bincount(region.ravel(), weights=scores.ravel(), minlength=4) / scores.sum()
        print(f"preset {preset}: {config.train} train / {config.test} test images, {config.image_size} px")
        print(f"  training: {epochs} epochs in {train_time:.0f} s on {threads} thread(s)")
        print(f"  test accuracy            {100 * correct / len(test):6.1f} %")
        print(f"  PxAP CAM                 {_pxap(scores, truth):6.1f}")
        print(f"  PxAP all-ones            {_pxap(np.ones_like(scores), truth):6.1f}")
        print(f"  PxAP oracle glyph map    {_pxap(oracle, truth):6.1f}")
        names = ("glyph", "object w/o glyph", "distractors", "other background")
        for name, share, cover in zip(names, mass, area, strict=True):
            print(
                f"  CAM mass on {name:17s} {100 * share:5.1f} % (covers {100 * cover:5.1f} % of the pixels)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    speed_parser = commands.add_parser("speed")
    speed_parser.add_argument("--images", type=int, default=1000)
    speed_parser.add_argument("--image-size", type=int, default=128)
    transforms_parser = commands.add_parser("transforms")
    transforms_parser.add_argument("--samples", type=int, default=300)
    headroom_parser = commands.add_parser("headroom")
    headroom_parser.add_argument("--preset", choices=PRESETS, default="natural")
    headroom_parser.add_argument("--epochs", type=int, default=12)
    headroom_parser.add_argument("--threads", type=int, default=2)
    headroom_parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    if args.command == "speed":
        speed(args.images, args.image_size)
    elif args.command == "transforms":
        transforms(args.samples)
    else:
        headroom(args.preset, args.epochs, args.threads, args.lr)


if __name__ == "__main__":
    main()
