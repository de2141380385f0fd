"""``wsol evaluate``: score a folder of ``.npy`` maps (any tool's) or a checkpoint against a dataset split.

Writes ``metrics.json`` (``EvaluationResult.to_dict()``), ``tau_curves.png`` and ``pr_curves.png`` into
``--out``, each file atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from wsol.evaluation import EvaluationResult, EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.maps_io import iterate_samples, load_ground_truth
from wsol.evaluation.parity import check_scoremap
from wsol.io import atomic_write_text

_BATCH = 32


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compute WSOL metrics for score maps or a checkpoint",
        description="Evaluate .npy score maps (--maps) or a trained checkpoint (--checkpoint) on a split.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--maps", type=Path, help="folder of <image_id>.npy score maps (wsolevaluation layout)"
    )
    source.add_argument("--checkpoint", type=Path, help="checkpoint written by `wsol train`")
    source.add_argument(
        "--baseline",
        choices=("all_ones", "center"),
        help="a trivial baseline that needs no training (wsol.methods.baselines)",
    )
    parser.add_argument(
        "--frame-size",
        type=int,
        default=224,
        help="--baseline: square frame for images of varying sizes (default 224, as data.frame_size)",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset folder, or a metadata split folder")
    parser.add_argument("--split", default=None, help="split name (not needed for a metadata split folder)")
    parser.add_argument("--mask-root", type=Path, default=None, help="mask PNG root of a raw metadata split")
    parser.add_argument(
        "--cam", default=None, help="post-hoc CAM method for --checkpoint (default: the method's maps)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder for metrics.json and plots")
    parser.add_argument(
        "--parity",
        action="store_true",
        help="reproduce clovaai/wsolevaluation exactly (224 frame, truncated boxes, +1-pixel box end)",
    )
    parser.add_argument("--cam-curve-interval", type=float, default=0.001, help="τ grid step (default 0.001)")
    parser.add_argument(
        "--iou-thresholds", type=int, nargs="+", default=[30, 50, 70], help="IoU thresholds δ in percent"
    )
    parser.add_argument(
        "--pixel-threshold", type=float, default=0.5, help="threshold for F1/IoU (default 0.5)"
    )
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="min-max normalise each map (default: off for --maps and --baseline, whose maps lie in [0, 1]; "
        "on for --checkpoint)",
    )
    parser.add_argument("--workers", type=int, default=0, help="processes for box extraction (0: in-process)")
    parser.set_defaults(func=run)


def _config(args: argparse.Namespace, normalize: bool) -> EvaluatorConfig:
    return EvaluatorConfig(
        parity="wsolevaluation" if args.parity else None,
        cam_curve_interval=args.cam_curve_interval,
        iou_thresholds=tuple(args.iou_thresholds),
        pixel_threshold=args.pixel_threshold,
        normalize=normalize,
        workers=args.workers,
    )


def evaluate_maps(
    maps_dir: Path,
    data: Path,
    split: str | None,
    config: EvaluatorConfig,
    mask_root: Path | None = None,
) -> EvaluationResult:
    """Evaluate the ``.npy`` maps of ``maps_dir`` against the ground truth of ``data`` / ``split``."""
    if not Path(maps_dir).is_dir():
        raise FileNotFoundError(f"--maps {maps_dir}: folder not found")
    truth = load_ground_truth(data, split, mask_root)
    pending: list = []
    with WSOLEvaluator(config) as evaluator:

        def flush() -> None:
            with_masks = all(s.mask is not None for s in pending)
            evaluator.update(
                torch.from_numpy(np.stack([s.scoremap for s in pending])),
                boxes=[s.boxes for s in pending] if any(len(s.boxes) for s in pending) else None,
                masks=torch.from_numpy(np.stack([s.mask for s in pending])) if with_masks else None,
                ignore=torch.from_numpy(
                    np.stack([s.ignore if s.ignore is not None else np.zeros_like(s.mask) for s in pending])
                )
                if with_masks
                else None,
            )
            pending.clear()

        for sample in iterate_samples(maps_dir, truth, truncate_boxes=config.parity is not None):
            if not config.normalize:  # the evaluator would name only the batch position
                check_scoremap(sample.scoremap, str(sample.path))
            if pending and (
                sample.scoremap.shape != pending[0].scoremap.shape
                or sample.scoremap.dtype != pending[0].scoremap.dtype
                or (sample.mask is None) != (pending[0].mask is None)
                or len(pending) == _BATCH
            ):
                flush()
            pending.append(sample)
        if pending:
            flush()
        return evaluator.compute()


def write_outputs(result: EvaluationResult, out_dir: Path, metrics: bool = True) -> list[Path]:
    """``metrics.json`` (unless ``metrics`` is False) and the plots, each written atomically."""
    from wsol.report.plots import save_evaluation_plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if metrics:
        path = out_dir / "metrics.json"
        atomic_write_text(path, json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return [*written, *save_evaluation_plots(result, out_dir)]


def _summary(result: EvaluationResult) -> str:
    parts = [f"images={result.num_images}"]
    for name in (
        "top1_acc",
        "top5_acc",
        "max_box_acc_v1",
        "max_box_acc_v2",
        "top1_loc",
        "pxap",
        "f1_pos",
        "f1_neg",
    ):
        value = getattr(result, name)
        if isinstance(value, dict):
            value = value.get(50)
        if value is not None:
            parts.append(f"{name}={value:.4f}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    if args.maps is not None:
        normalize = False if args.normalize is None else args.normalize
        result = evaluate_maps(args.maps, args.data, args.split, _config(args, normalize), args.mask_root)
        written = write_outputs(result, args.out)
    elif args.baseline is not None:
        from wsol.training.inference import evaluate_baseline

        if args.split is None:
            raise ValueError("--split: required with --baseline")
        normalize = False if args.normalize is None else args.normalize
        config = _config(args, normalize)
        result = evaluate_baseline(args.baseline, args.data, args.split, args.out, config, args.frame_size)
        written = [args.out / "metrics.json", *write_outputs(result, args.out, metrics=False)]
    else:
        from wsol.training.inference import evaluate_checkpoint

        if args.split is None:
            raise ValueError("--split: required with --checkpoint")
        normalize = True if args.normalize is None else args.normalize
        result = evaluate_checkpoint(
            checkpoint=args.checkpoint,
            data_root=args.data,
            split=args.split,
            cam=args.cam,
            out_dir=args.out,
            config=_config(args, normalize),
        )
        # evaluate_checkpoint writes metrics.json itself (with the checkpoint's provenance); add the plots.
        written = [args.out / "metrics.json", *write_outputs(result, args.out, metrics=False)]
    print(_summary(result))
    for path in written:
        print(f"wrote {path}")
    return 0
