"""``wsol two-stage``: per-image τ by the two-stage selection (no ground truth), scored against oracle τs.

For every image of a split: the box at the τ chosen by :mod:`wsol.evaluation.two_stage` from the map and the
last feature map of the checkpoint's classifier; the box at the per-image oracle τ (best IoU); the box at the
single τ best for the whole split (what MaxBoxAcc reports); and at τ = 0.2 (the customary fixed value). Writes
``two_stage.json`` (box accuracy at each IoU threshold for the four, mean chosen τ) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

FIXED_TAU = 0.2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``two-stage`` verb to the command parsers."""
    parser = subparsers.add_parser(
        "two-stage",
        help="choose τ per image without ground truth (two-stage selection) and compare with oracle τs",
        description="Two-stage per-image threshold selection (Zhang 2021, §5.4.3) on a checkpoint.",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint written by `wsol train`")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder")
    parser.add_argument("--split", default="test", help="split name (default test)")
    parser.add_argument(
        "--cam", default=None, help="post-hoc CAM (e.g. recombined); default the method's maps"
    )
    parser.add_argument(
        "--iou-thresholds", type=int, nargs="+", default=[30, 50, 70], help="IoU δ in percent"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder for two_stage.json")
    parser.set_defaults(func=run)


def _features_layer(method: torch.nn.Module, checkpoint: Path) -> torch.nn.Module:
    cam_model = getattr(method, "cam_model", None)
    if cam_model is None:
        raise ValueError(f"{checkpoint}: method {type(method).__name__} exposes no classifier feature layer")
    return cam_model()[1]


def run(args: argparse.Namespace) -> int:
    """Score the two-stage τ selection on a split and write ``two_stage.json``; the exit status."""
    # torch and the engine load only when the verb runs, not for `wsol --help`.
    import torch
    from torch.utils.data import DataLoader

    from wsol.data.dataset import WSOLDataset, collate
    from wsol.evaluation.two_stage import oracle_comparison
    from wsol.io import atomic_write_text
    from wsol.methods.checkpoint import load_checkpoint
    from wsol.training.inference import cam_predict, eval_transform

    loaded = load_checkpoint(args.checkpoint)
    method, config = loaded.method, loaded.config
    dataset = WSOLDataset(args.data, args.split, eval_transform(config))
    loader = DataLoader(dataset, batch_size=int(config["data"]["batch_size"]), collate_fn=collate)
    captured: list[torch.Tensor] = []
    handle = _features_layer(method, args.checkpoint).register_forward_hook(
        lambda _m, _i, output: captured.append(output.detach())
    )
    parts: list[dict[str, np.ndarray]] = []
    try:
        for batch in loader:
            captured.clear()
            if args.cam is None:
                with torch.no_grad():
                    prediction = method.predict(batch["image"], batch["label"])
            else:
                prediction = cam_predict(method, args.cam, batch["image"], batch["label"])
            parts.append(oracle_comparison(prediction.maps.float(), captured[-1], batch["boxes"]))
    finally:
        handle.remove()
    summary = summarize(parts, args.iou_thresholds)
    payload = {"checkpoint": str(args.checkpoint), "split": args.split, "cam": args.cam, **summary}
    atomic_write_text(Path(args.out) / "two_stage.json", json.dumps(payload, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def summarize(parts: list[dict[str, np.ndarray]], iou_thresholds: list[int]) -> dict[str, object]:
    """Box accuracy (%) per IoU threshold for the two-stage, per-image oracle, best fixed and 0.2 τs."""
    import numpy as np

    grid = parts[0]["grid"]
    grid_iou = np.concatenate([part["grid_iou"] for part in parts])
    two_stage = np.concatenate([part["two_stage_iou"] for part in parts])
    fixed = int(np.argmin(np.abs(grid - FIXED_TAU)))
    summary: dict[str, object] = {
        "images": len(two_stage),
        "mean_two_stage_tau": float(np.concatenate([part["two_stage_tau"] for part in parts]).mean()),
    }
    for delta in iou_thresholds:
        hits = grid_iou >= delta / 100
        best = int(hits.mean(axis=0).argmax())
        summary[f"iou{delta}"] = {
            "two_stage": 100 * float((two_stage >= delta / 100).mean()),
            "oracle_per_image": 100 * float(hits.any(axis=1).mean()),
            "best_fixed": 100 * float(hits[:, best].mean()),
            "best_fixed_tau": float(grid[best]),
            f"fixed_{FIXED_TAU}": 100 * float(hits[:, fixed].mean()),
        }
    return summary
