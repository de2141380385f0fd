"""F-CAM's claim (Belharbi et al., WACV 2022, arXiv 2109.07069): the decoder's map localizes better than
the CAM it was trained from (PxAP, F1⁺), with sharper boundaries.

For each F-CAM / NEGEV run folder given, the selected checkpoint is evaluated on ``--split`` twice with the
same evaluator: its decoder map (``output="decoder"``) and its frozen classifier's CAM (``output="cam"``, the
seeds' source). Prints one row per run and mean ± sd over runs, and writes ``--overlays`` PNG strips (image
with the ground-truth contour | CAM | decoder map, each with its mask at τ = 0.5 outlined) for the first run.

``--classes`` restricts the evaluation to images of those labels (NEGEV: negative vs other classes).

Usage: ``python benchmarks/claims_fcam.py RUN_DIR [RUN_DIR ...] [--split test] [--overlays out/ --count 8]``
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.transforms import denormalize
from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.methods.checkpoint import load_checkpoint
from wsol.report.overlay import OverlayStyle, draw_overlay, save_png
from wsol.training.inference import eval_transform
from wsol.training.run import resolve_data_root

METRICS = ("pxap", "f1_pos", "f1_neg", "max_box_acc_v2")


@torch.no_grad()
def evaluate(
    run_dir: Path, split: str, classes: list[int] | None = None
) -> tuple[dict[str, dict[str, float]], list[np.ndarray]]:
    """Metrics per output ("cam", "decoder") on images of ``classes`` (None: all); first-batch strips."""
    loaded = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    method, config = loaded.method, loaded.config
    dataset = WSOLDataset(resolve_data_root(config["data"]), split, eval_transform(config))
    loader = DataLoader(dataset, batch_size=32, collate_fn=collate)
    evaluators = {name: WSOLEvaluator(EvaluatorConfig()) for name in ("cam", "decoder")}
    strips: list[np.ndarray] = []
    for batch in loader:
        if classes is not None:
            batch = subset(batch, torch.isin(batch["label"], torch.tensor(classes)))
            if not len(batch["label"]):
                continue
        maps = {}
        for name, evaluator in evaluators.items():
            method.output = name
            prediction = method.predict(batch["image"], batch["label"])
            maps[name] = prediction.maps
            evaluator.update(
                prediction.maps.float(),
                masks=batch["mask"],
                ignore=batch["ignore"],
                has_mask=batch["has_mask"],
                boxes=batch["boxes"],
                labels=batch["label"],
            )
        if not strips:
            strips = [strip(batch, maps, index) for index in range(len(batch["label"]))]
    results = {name: evaluator.compute().to_dict() for name, evaluator in evaluators.items()}
    return {name: {k: float(r[k]) for k in METRICS} for name, r in results.items()}, strips


def subset(batch: dict, keep: torch.Tensor) -> dict:
    """The batch restricted to the images where ``keep`` is True."""
    index = keep.nonzero()[:, 0].tolist()
    return {k: v[keep] if isinstance(v, torch.Tensor) else [v[i] for i in index] for k, v in batch.items()}


def strip(batch: dict, maps: dict[str, torch.Tensor], index: int) -> np.ndarray:
    image = (denormalize(batch["image"][index]).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    truth_mask = batch["mask"][index, 0].numpy() > 0.5
    truth = draw_overlay(image, np.zeros(image.shape[:2]), truth_mask, style=OverlayStyle(alpha=0.0))
    panels = [truth]
    for name in ("cam", "decoder"):
        heat = maps[name][index].numpy()
        panels.append(draw_overlay(image, heat, heat > 0.5))
    return np.concatenate(panels, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--overlays", type=Path, default=None)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--classes", type=int, nargs="+", default=None, help="only images of these labels")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {"cam": [], "decoder": []}
    for index, run in enumerate(args.runs):
        metrics, strips = evaluate(run, args.split, args.classes)
        for name, values in metrics.items():
            rows[name].append(values)
            print(f"{run.name} {name:8s} " + "  ".join(f"{k} {values[k]:6.2f}" for k in METRICS))
        if index == 0 and args.overlays is not None:
            save_png(args.overlays / f"{run.name}-{args.split}.png", np.concatenate(strips[: args.count]))
    for name, values in rows.items():
        cells = []
        for key in METRICS:
            column = [v[key] for v in values]
            spread = statistics.stdev(column) if len(column) > 1 else 0.0
            cells.append(f"{key} {statistics.mean(column):.2f} ± {spread:.2f}")
        print(f"mean over {len(values)} run(s), {name}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
