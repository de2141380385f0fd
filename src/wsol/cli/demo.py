"""``wsol demo``: the main job on the embedded default.

First, with no training, localizes the shipped sample photos with EfficientNet-Lite0's ImageNet classifier
and classic CAM (``OUT/imagenet/``, as ``wsol localize --imagenet``; skipped with a note when the
``pretrained`` extra is not installed). Then generates the synthetic benchmark, trains a CAM-Avg baseline
and min-max entropy with recursive erasing (arXiv 1907.12934) on the
CPU, evaluates both on the test split, and
writes a results folder::

    OUT/metrics.md, OUT/metrics.json       the comparison table (test split, GT-known maps)
    OUT/<method>/metrics.json, *.png       each method's full metrics, tau curves and PR curves
    OUT/overlays/<image>.png               image + ground truth | CAM-Avg | min-max entropy, side by side
    OUT/runs/<method>/                     the training runs (config, checkpoints, logs)
    OUT/imagenet/<photo>_*                 top-5 ImageNet classes, map, mask, boxes, overlay per photo
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsol.data.format import read_dataset_info, read_split
from wsol.data.images import read_image, read_mask
from wsol.io import atomic_write_text
from wsol.report.overlay import draw_overlay, save_png


@dataclass(frozen=True)
class DemoMethod:
    key: str
    title: str
    preset: str


DEMO_METHODS = (
    DemoMethod("cam_avg", "CAM-Avg (GAP head)", "cam_gap"),
    DemoMethod("minmax_entropy", "Min-max entropy, erasing u=4", "minmax_entropy"),
)

OVERLAY_MIN_SIDE = 256
"""Overlay strips of small images are enlarged (nearest neighbour) to at least this many pixels high."""

# (column title, EvaluationResult.to_dict() key); per-IoU dictionaries are read at delta = 50 (the V1 rule).
TABLE_COLUMNS = (
    ("classification error %", "top1_err"),
    ("F1+ %", "f1_pos"),
    ("F1- %", "f1_neg"),
    ("PxAP", "pxap"),
    ("MaxBoxAccV2", "max_box_acc_v2"),
    ("GT-known loc %", "gt_known_loc"),
    ("top-1 loc %", "top1_loc"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train CAM-Avg and min-max entropy on the synthetic benchmark and compare them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="results folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of training (the benchmark keeps its own)")
    parser.add_argument("--overlays", type=int, default=8, help="number of test images drawn side by side")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="config overrides applied to both methods, e.g. trainer.max_epochs=2 data.synthetic.train=200",
    )
    parser.set_defaults(func=run_demo)


def _metric(metrics: dict[str, object], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, dict):
        value = value.get("50")
    return None if value is None else float(value)


def _table_value(metrics: dict[str, object], key: str) -> str:
    value = _metric(metrics, key)
    return "n/a" if value is None else f"{value:.2f}"


def _markdown_table(rows: dict[str, dict[str, object]], seconds: dict[str, float]) -> str:
    header = "| method | " + " | ".join(title for title, _ in TABLE_COLUMNS) + " | train time (s) |"
    lines = [header, "|" + "---|" * (len(TABLE_COLUMNS) + 2)]
    for method in DEMO_METHODS:
        metrics = rows[method.key]
        values = " | ".join(_table_value(metrics, key) for _, key in TABLE_COLUMNS)
        lines.append(f"| {method.title} | {values} | {seconds[method.key]:.0f} |")
    return "\n".join(lines) + "\n"


def _ground_truth_panel(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    panel = image.copy()
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(panel, contours, -1, (0, 255, 0), 1)
    return panel


def _write_overlays(root: Path, checkpoints: dict[str, Path], out_dir: Path, count: int) -> list[Path]:
    """One PNG per test image: image with the GT contour, then each method's map, mask contour and box."""
    from wsol.training.inference import load_checkpoint, predict_images

    info = read_dataset_info(root)
    records = read_split(root, "test")[:count]
    image_root, mask_root = info.resolve_image_root(root), info.resolve_mask_root(root)
    paths = [image_root / record.image_id for record in records]
    predictions = {}
    for key, checkpoint in checkpoints.items():
        method, config = load_checkpoint(checkpoint)
        method.eval()
        predictions[key] = list(predict_images(method, config, paths))
    written = []
    for index, (record, path) in enumerate(zip(records, paths, strict=True)):
        image = read_image(path)
        mask = None
        if record.mask_paths:
            mask = np.any([read_mask(mask_root / name) for name in record.mask_paths], axis=0)
        panels = [_ground_truth_panel(image, mask)]
        for method in DEMO_METHODS:
            item = predictions[method.key][index]
            box = [item.largest_box] if item.largest_box is not None else []
            panels.append(draw_overlay(image, item.map, item.mask, box))
        strip = np.concatenate(panels, axis=1)
        scale = max(1, -(-OVERLAY_MIN_SIDE // image.shape[0]))  # ceiling division
        strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        target = out_dir / f"{Path(record.image_id).stem}.png"
        save_png(target, strip)
        written.append(target)
    return written


IMAGENET_BACKBONE = "efficientnet_lite0"


def _imagenet_part(out_dir: Path) -> None:
    """Zero-training localization of the sample photos with ImageNet weights (needs the pretrained extra)."""
    from wsol.cli.localize import write_localization
    from wsol.data.sample_photos import SAMPLE_PHOTOS, sample_photo
    from wsol.models.weights import WeightsUnavailableError
    from wsol.training.inference import imagenet_method, predict_images

    try:
        loaded = imagenet_method(IMAGENET_BACKBONE)
    except WeightsUnavailableError as err:
        print(f"[demo] skipping the ImageNet part: {err}", flush=True)
        return
    photos = [sample_photo(name) for name in SAMPLE_PHOTOS]
    for item in predict_images(loaded.method, loaded.config, photos):
        prediction = write_localization(item, loaded.class_names, out_dir)
        best = prediction["top5"][0]
        print(
            f"[demo] {IMAGENET_BACKBONE} (ImageNet, no training) on {item.path.name}: {best['name']} "
            f"(p={best['probability']:.2f}) -> {out_dir / (item.path.stem + '_overlay.png')}",
            flush=True,
        )


def run_demo(args: argparse.Namespace) -> int:
    # Lightning and the engine load only when the demo runs, not for every `wsol` command.
    from wsol.evaluation import EvaluatorConfig
    from wsol.report.plots import save_evaluation_plots
    from wsol.training.config import load_config, preset_path
    from wsol.training.inference import evaluate_checkpoint, load_checkpoint
    from wsol.training.run import resolve_data_root, train

    out: Path = args.out.absolute()
    _imagenet_part(out / "imagenet")
    rows: dict[str, dict[str, object]] = {}
    seconds: dict[str, float] = {}
    checkpoints: dict[str, Path] = {}
    root: Path | None = None
    for method in DEMO_METHODS:
        overrides = [f"output_dir={out / 'runs'}", f"name={method.key}", f"seed={args.seed}", *args.overrides]
        config = load_config(preset_path(method.preset), overrides)
        root = resolve_data_root(config.data)
        print(f"[demo] training {method.title} ({preset_path(method.preset).name}) on {root}", flush=True)
        result = train(config)
        _, run_config = load_checkpoint(result.checkpoint)
        evaluation = evaluate_checkpoint(
            result.checkpoint,
            root,
            "test",
            None,
            out / method.key,
            EvaluatorConfig(**run_config.get("eval", {})),
        )
        save_evaluation_plots(evaluation, out / method.key)
        rows[method.key] = evaluation.to_dict()
        seconds[method.key] = result.train_seconds
        checkpoints[method.key] = result.checkpoint
    assert root is not None
    table = _markdown_table(rows, seconds)
    atomic_write_text(out / "metrics.md", "# wsol demo: test split of the synthetic benchmark\n\n" + table)
    summary = {
        method.key: {
            "title": method.title,
            "train_seconds": round(seconds[method.key], 1),
            **{key: _metric(rows[method.key], key) for _, key in TABLE_COLUMNS},
        }
        for method in DEMO_METHODS
    }
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    overlays = _write_overlays(root, checkpoints, out / "overlays", args.overlays)
    print(table)
    print(f"[demo] results in {out} ({len(overlays)} overlays)")
    return 0
