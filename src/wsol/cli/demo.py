"""``wsol demo``: the main job on the embedded default.

First, with no training, localizes the shipped sample photos with EfficientNet-Lite0's ImageNet classifier
and classic CAM (``OUT/imagenet/``, as ``wsol localize --imagenet``; skipped with a note when the
``pretrained`` extra is not installed). Then generates the synthetic benchmark, trains a CAM-Avg baseline
and min-max entropy with recursive erasing (arXiv 1907.12934) on the CPU for each seed (``--seeds``, default
0,1,2), evaluates every run on the test split with τ chosen on the validation split, and writes a results
folder::

    OUT/metrics.md, OUT/metrics.json       `wsol compare` of the runs: mean ± sd over seeds (validation τ,
                                           oracle τ beside), paired bootstrap intervals, train times
    OUT/<method>/seed<S>/                  each run's evaluation: metrics.json (with provenance), per-image
                                           statistics, tau and PR curves; the first seed's predictions/
    OUT/report/index.html                  the HTML report of all runs (`wsol report`)
    OUT/overlays/<image>.png               image + ground truth | CAM-Avg | min-max entropy (first seed)
    OUT/runs/<method>-seed<S>/             the training runs (config, checkpoints, logs)
    OUT/imagenet/<photo>_*                 top-5 ImageNet classes, map, mask, boxes, overlay per photo
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train CAM-Avg and min-max entropy on the synthetic benchmark and compare them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="results folder")
    parser.add_argument(
        "--seeds", default="0,1,2", help="training seeds, comma-separated (the benchmark keeps its own)"
    )
    parser.add_argument("--overlays", type=int, default=8, help="number of test images drawn side by side")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="training runs at once, each in its own process with cpu_count // jobs threads "
        "(default: one per CPU core, at most one per run); the numbers depend on the thread count",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="config overrides applied to both methods, e.g. trainer.max_epochs=2 data.synthetic.train=200",
    )
    parser.set_defaults(func=run_demo)


def _ground_truth_panel(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    import cv2
    import numpy as np

    panel = image.copy()
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(panel, contours, -1, (0, 255, 0), 1)
    return panel


def _write_overlays(root: Path, checkpoints: dict[str, Path], out_dir: Path, count: int) -> list[Path]:
    """One PNG per test image: image with the GT contour, then each method's map, mask contour and box."""
    import cv2
    import numpy as np

    from wsol.data.format import read_dataset_info, read_split
    from wsol.data.images import read_image, read_mask
    from wsol.methods.checkpoint import load_checkpoint
    from wsol.report.overlay import draw_overlay, save_png
    from wsol.training.inference import predict_images

    info = read_dataset_info(root)
    records = read_split(root, "test")[:count]
    image_root, mask_root = info.resolve_image_root(root), info.resolve_mask_root(root)
    paths = [image_root / record.image_id for record in records]
    predictions = {}
    for key, checkpoint in checkpoints.items():
        loaded = load_checkpoint(checkpoint)
        predictions[key] = list(predict_images(loaded.method, loaded.config, paths))
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


def _train_and_evaluate(
    method: DemoMethod, seed: int, args: argparse.Namespace, out: Path, export: bool
) -> tuple[Path, float]:
    """Train one run and evaluate it into ``OUT/<method>/seed<S>``; returns (checkpoint, train seconds)."""
    from wsol.evaluation import EvaluatorConfig
    from wsol.methods.checkpoint import load_checkpoint
    from wsol.report.plots import save_evaluation_plots
    from wsol.training.config import load_config, preset_path
    from wsol.training.evaluate_run import EvaluationRequest, evaluate_run
    from wsol.training.run import resolve_data_root, train

    name = f"{method.key}-seed{seed}"
    overrides = [f"output_dir={out / 'runs'}", f"name={name}", f"seed={seed}", *args.overrides]
    config = load_config(preset_path(method.preset), overrides)
    root = resolve_data_root(config.data)
    print(
        f"[demo] training {method.title}, seed {seed} ({preset_path(method.preset).name}) on {root}",
        flush=True,
    )
    result = train(config)
    run_config = load_checkpoint(result.checkpoint).config
    request = EvaluationRequest(
        checkpoint=result.checkpoint,
        data_root=root,
        split=config.data.test_split,
        out_dir=out / method.key / f"seed{seed}",
        config=EvaluatorConfig(**run_config.get("eval", {})),
        val_split=config.data.val_split,
        export=export,
        label=method.title,
    )
    _, evaluation = evaluate_run(request)
    save_evaluation_plots(evaluation, request.out_dir)
    return result.checkpoint, result.train_seconds


def _train_in_worker(
    method: DemoMethod, seed: int, args: argparse.Namespace, out: Path, export: bool, threads: int
) -> tuple[Path, float]:
    """``_train_and_evaluate`` in a pool process that uses ``threads`` CPU threads."""
    import torch

    torch.set_num_threads(threads)
    return _train_and_evaluate(method, seed, args, out, export)


def _run_all(
    seeds: list[int], args: argparse.Namespace, out: Path
) -> dict[tuple[str, int], tuple[Path, float]]:
    """Train and evaluate every (method, seed), ``args.jobs`` at a time, longest runs first.

    The runs are independent, so on a 2-core machine two single-thread processes finish sooner than one
    two-thread process running them in turn (the small models do not use two threads well)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    runs = [(method, seed) for method in reversed(DEMO_METHODS) for seed in seeds]
    jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(runs)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    if jobs == 1:
        return {(m.key, s): _train_and_evaluate(m, s, args, out, s == seeds[0]) for m, s in runs}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            (m.key, s): pool.submit(_train_in_worker, m, s, args, out, s == seeds[0], threads)
            for m, s in runs
        }
        return {key: future.result() for key, future in futures.items()}


def run_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from wsol.cli.report import write_report
    from wsol.cli.train import parse_seeds
    from wsol.io import atomic_write_text
    from wsol.report.compare import compare, load_run, markdown
    from wsol.training.config import load_config, preset_path
    from wsol.training.run import resolve_data_root

    out: Path = args.out.absolute()
    seeds = parse_seeds(args.seeds)
    _imagenet_part(out / "imagenet")
    root = resolve_data_root(load_config(preset_path(DEMO_METHODS[0].preset), list(args.overrides)).data)
    results = _run_all(seeds, args, out)
    seconds = {m.key: [results[m.key, seed][1] for seed in seeds] for m in DEMO_METHODS}
    first_checkpoints = {m.key: results[m.key, seeds[0]][0] for m in DEMO_METHODS}
    evaluations = [out / m.key / f"seed{seed}" for m in DEMO_METHODS for seed in seeds]
    document = compare([load_run(path) for path in evaluations])
    document["train_seconds"] = {m.title: [round(t, 1) for t in seconds[m.key]] for m in DEMO_METHODS}
    ddof = min(1, len(seeds) - 1)  # the sample sd, as the metrics; 0 for a single seed
    times = "".join(
        f"| {m.title} | {np.mean(seconds[m.key]):.0f} ± {np.std(seconds[m.key], ddof=ddof):.0f} |\n"
        for m in DEMO_METHODS
    )
    text = (
        "# wsol demo: test split of the synthetic benchmark\n\n"
        f"Seeds {', '.join(map(str, seeds))}; mean ± sd over seeds.\n\n{markdown(document)}\n"
        f"| method | train time (s) |\n|---|---|\n{times}"
    )
    atomic_write_text(out / "metrics.md", text)
    atomic_write_text(out / "metrics.json", json.dumps(document, indent=2, sort_keys=True) + "\n")
    overlays = _write_overlays(root, first_checkpoints, out / "overlays", args.overlays)
    report = write_report(evaluations, out / "report")
    print(text)
    print(f"[demo] results in {out} ({len(overlays)} overlays); report: {report}")
    return 0
