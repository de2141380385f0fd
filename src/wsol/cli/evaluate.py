"""``wsol evaluate``: score a folder of ``.npy`` maps (any tool's) or a checkpoint against a dataset split.

Writes ``metrics.json`` (``EvaluationResult.to_dict()`` + ``val_tau``, the figures at the τ chosen on the
validation split, + ``provenance``), ``per_image.npz`` / ``per_image.csv``, ``tau_curves.png`` and
``pr_curves.png`` into ``--out``, each file atomically; ``--export`` adds the predictions in standard formats
(``wsol.evaluation.export``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from wsol.cams import CAM_METHODS
from wsol.evaluation.catalogue import summary_metrics

if TYPE_CHECKING:
    from wsol.evaluation import EvaluationResult, EvaluatorConfig, WSOLEvaluator

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
        "--cam",
        default=None,
        choices=sorted(CAM_METHODS),
        metavar="CAM",
        help="post-hoc CAM method for --checkpoint (default: the method's maps): %(choices)s",
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
    parser.add_argument(
        "--val-split",
        default="auto",
        help="split whose best τ is applied to --split (default: 'val' when the dataset has it; 'none': off)",
    )
    parser.add_argument(
        "--val-maps", type=Path, default=None, help="with --maps: the maps of --val-split, to choose τ on"
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="with --checkpoint: also write predictions/ (maps .npy, masks PNG, COCO JSON with RLE masks)",
    )
    parser.add_argument("--label", default=None, help="name of the evaluated method in reports")
    parser.add_argument(
        "--per-image",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep per-image statistics for `wsol compare` / `wsol report` (about 15 kB per image; "
        "--no-per-image for very large splits, which also lets --workers parallelise box extraction)",
    )
    parser.set_defaults(func=run)


def _config(args: argparse.Namespace, normalize: bool) -> EvaluatorConfig:
    from wsol.evaluation import EvaluatorConfig

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
    return _maps_evaluator(maps_dir, data, split, config, mask_root).compute()


def _maps_evaluator(
    maps_dir: Path,
    data: Path,
    split: str | None,
    config: EvaluatorConfig,
    mask_root: Path | None = None,
) -> WSOLEvaluator:
    import numpy as np

    from wsol.evaluation import WSOLEvaluator
    from wsol.evaluation.maps_io import iterate_samples, load_ground_truth
    from wsol.evaluation.parity import check_scoremap

    if not Path(maps_dir).is_dir():
        raise FileNotFoundError(f"--maps {maps_dir}: folder not found")
    truth = load_ground_truth(data, split, mask_root)
    pending: list = []
    with WSOLEvaluator(config) as evaluator:

        def flush() -> None:
            with_masks = all(s.mask is not None for s in pending)
            evaluator.update(
                np.stack([s.scoremap for s in pending]),
                boxes=[s.boxes for s in pending] if any(len(s.boxes) for s in pending) else None,
                masks=np.stack([s.mask for s in pending]) if with_masks else None,
                ignore=np.stack(
                    [s.ignore if s.ignore is not None else np.zeros_like(s.mask) for s in pending]
                )
                if with_masks
                else None,
                image_ids=[s.image_id for s in pending],
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
        return evaluator


def write_outputs(result: EvaluationResult, out_dir: Path, metrics: bool = True) -> list[Path]:
    """``metrics.json`` (unless ``metrics`` is False) and the plots, each written atomically."""
    from wsol.io import atomic_write_text
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
    for name in summary_metrics():
        value = getattr(result, name)
        if isinstance(value, dict):
            value = value.get(50)
        if value is not None:
            parts.append(f"{name}={value:.4f}")
    return " ".join(parts)


def _val_split(args: argparse.Namespace) -> str | None:
    """``--val-split``: ``auto`` = ``val`` when the dataset has it (and it is not the evaluated split)."""
    if args.val_split == "none":
        return None
    if args.val_split != "auto":
        return args.val_split
    from wsol.data.format import DATASET_FILE, read_dataset_info

    if not (Path(args.data) / DATASET_FILE).is_file():
        return None
    return "val" if "val" in read_dataset_info(args.data).splits and args.split != "val" else None


def _run_maps(args: argparse.Namespace) -> EvaluationResult:
    from wsol.evaluation.protocol import at_validation_tau, write_evaluation
    from wsol.evaluation.provenance import provenance_record

    if args.export:
        raise ValueError("--export: only with --checkpoint (with --maps the maps are already on disk)")
    config = _config(args, False if args.normalize is None else args.normalize)
    evaluator = _maps_evaluator(
        args.maps, args.data, args.split, replace(config, per_image=args.per_image), args.mask_root
    )
    result = evaluator.compute()
    payload = {"maps": str(args.maps), "data": str(args.data), "split": args.split, **result.to_dict()}
    if args.val_maps is not None:
        val_split = _val_split(args)
        if val_split is None:
            raise ValueError("--val-maps: needs --val-split (or a dataset with a 'val' split)")
        val = evaluate_maps(args.val_maps, args.data, val_split, config, args.mask_root)
        payload["val_tau"] = {"split": val_split, **at_validation_tau(val, result)}
    source = {"maps": str(Path(args.maps).absolute())}
    payload["provenance"] = provenance_record(
        evaluator=config, data=args.data, split=args.split, source=source, label=args.label or args.maps.name
    )
    write_evaluation(args.out, payload, evaluator)
    return result


def _run_checkpoint(args: argparse.Namespace) -> EvaluationResult:
    from wsol.training.evaluate_run import EvaluationRequest, evaluate_run

    if args.split is None:
        raise ValueError("--split: required with --checkpoint")
    if args.val_maps is not None:
        raise ValueError("--val-maps: only with --maps")
    request = EvaluationRequest(
        checkpoint=args.checkpoint,
        data_root=args.data,
        split=args.split,
        out_dir=args.out,
        config=_config(args, True if args.normalize is None else args.normalize),
        cam=args.cam,
        val_split=_val_split(args),
        export=args.export,
        label=args.label,
        per_image=args.per_image,
    )
    return evaluate_run(request)[1]


def _run_baseline(args: argparse.Namespace) -> EvaluationResult:
    from wsol.training.inference import evaluate_baseline

    if args.split is None:
        raise ValueError("--split: required with --baseline")
    config = _config(args, False if args.normalize is None else args.normalize)
    return evaluate_baseline(args.baseline, args.data, args.split, args.out, config, args.frame_size)


def run(args: argparse.Namespace) -> int:
    if args.maps is not None:
        result = _run_maps(args)
    elif args.baseline is not None:
        result = _run_baseline(args)
    else:
        result = _run_checkpoint(args)
    written = [args.out / "metrics.json", *write_outputs(result, args.out, metrics=False)]
    print(_summary(result))
    for path in written:
        print(f"wrote {path}")
    return 0
