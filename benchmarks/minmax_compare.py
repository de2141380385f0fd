"""Min-max entropy vs its baselines over seeds, with paired per-image bootstrap intervals.

    python benchmarks/minmax_compare.py --out runs/compare --seeds 0 1 2 \
        --method minmax_entropy --baselines cam_gap wildcat [--set KEY=VALUE ...] [--all KEY=VALUE ...]

Trains every (preset, seed) with ``wsol train`` (one thread, skipped when its ``metrics.json`` exists), then
predicts the test split of each selected checkpoint and prints, per preset, the mean ± sd over seeds of the
evaluator's test metrics, and for ``method − baseline`` the mean difference of F1⁻ and PxAP with a 95 %
bootstrap interval. The bootstrap resamples test images (the same draw for both presets and all seeds,
so the comparison is paired); the statistic is the mean over seeds of the difference. F1⁻ per image is the
Dice of the background at threshold 0.5 of the evaluated map (re-normalised per image when the run's
``eval.normalize`` is on, as the evaluator does); PxAP is recomputed from per-image histograms of fg/bg
pixel scores (1001 bins, about the evaluator's 0.001 threshold step).
``--set`` overrides apply to the method only, ``--all`` to every preset.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.methods.checkpoint import load_checkpoint
from wsol.training.inference import eval_transform
from wsol.training.run import resolve_data_root

BINS = 1001
COLUMNS = ("error", "f1_pos", "f1_neg", "pxap", "max_box_acc_v2")


def train(out: Path, preset: str, seed: int, overrides: list[str]) -> Path:
    run = out / f"{preset}-s{seed}"
    if not (run / "metrics.json").is_file():
        command = [sys.executable, "-m", "wsol.cli.main", "train", "--config", preset, f"seed={seed}"]
        command += [f"output_dir={out}", f"name={run.name}", "trainer.progress_bar=false", *overrides]
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return run


@torch.no_grad()
def per_image(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per test image: background Dice at 0.5, and histograms of fg and bg pixel scores (N, BINS)."""
    loaded = load_checkpoint(run / "checkpoints" / "best.ckpt")
    method, config = loaded.method, loaded.config
    normalize = bool((config.get("eval") or {}).get("normalize", True))
    dataset = WSOLDataset(resolve_data_root(config["data"]), "test", eval_transform(config))
    dice_bg, hist_fg, hist_bg = [], [], []
    for batch in DataLoader(dataset, batch_size=32, collate_fn=collate):
        maps = method.predict(batch["image"], batch["label"]).maps.float()
        if normalize:
            low = maps.flatten(1).min(1).values.view(-1, 1, 1)
            high = maps.flatten(1).max(1).values.view(-1, 1, 1)
            maps = (maps - low) / (high - low).clamp_min(1e-8)
        for score, mask, ignore in zip(maps, batch["mask"][:, 0] > 0.5, batch["ignore"][:, 0], strict=True):
            valid = ~ignore
            predicted_bg, true_bg = (score < 0.5) & valid, (~mask) & valid
            overlap = 2.0 * float((predicted_bg & true_bg).sum())
            dice_bg.append(overlap / max(float(predicted_bg.sum() + true_bg.sum()), 1.0))
            bins = (score.clamp(0, 1) * (BINS - 1)).round().long()
            hist_fg.append(torch.bincount(bins[mask & valid], minlength=BINS).numpy())
            hist_bg.append(torch.bincount(bins[true_bg], minlength=BINS).numpy())
    return np.array(dice_bg), np.stack(hist_fg), np.stack(hist_bg)


def pxap(hist_fg: np.ndarray, hist_bg: np.ndarray) -> float:
    """Average precision of fg pixels from score histograms (thresholds from high to low)."""
    tp = np.cumsum(hist_fg[::-1])
    fp = np.cumsum(hist_bg[::-1])
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(tp[-1], 1)
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision)) * 100.0


def bootstrap(
    method: list[tuple[np.ndarray, ...]], baseline: list[tuple[np.ndarray, ...]], draws: int, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Mean over seeds of method − baseline for F1⁻ and PxAP: (estimate, 2.5 %, 97.5 %)."""
    rng = np.random.default_rng(seed)
    n = len(method[0][0])

    def difference(index: np.ndarray) -> tuple[float, float]:
        f1 = [100 * (a[0][index].mean() - b[0][index].mean()) for a, b in zip(method, baseline, strict=True)]
        ap = [
            pxap(a[1][index].sum(0), a[2][index].sum(0)) - pxap(b[1][index].sum(0), b[2][index].sum(0))
            for a, b in zip(method, baseline, strict=True)
        ]
        return float(np.mean(f1)), float(np.mean(ap))

    estimate = difference(np.arange(n))
    samples = np.array([difference(rng.integers(0, n, n)) for _ in range(draws)])
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return {
        "f1_neg": (estimate[0], float(low[0]), float(high[0])),
        "pxap": (estimate[1], float(low[1]), float(high[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--method", default="minmax_entropy")
    parser.add_argument("--baselines", nargs="+", default=["cam_gap", "wildcat"])
    parser.add_argument("--set", dest="method_overrides", nargs="*", default=[])
    parser.add_argument("--all", dest="common_overrides", nargs="*", default=[])
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    presets = [args.method, *args.baselines]
    images: dict[str, list[tuple[np.ndarray, ...]]] = {}
    print("| preset | seeds | selected epochs | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for preset in presets:
        extra = args.common_overrides + (args.method_overrides if preset == args.method else [])
        runs = [train(args.out, preset, seed, extra) for seed in args.seeds]
        metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
        images[preset] = [per_image(run) for run in runs]
        cells = []
        for key in COLUMNS:
            values = np.array([float(m["test"][f"test/{key}"]) for m in metrics])
            cells.append(f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0:.1f}")
        epochs = ",".join(str(m.get("selected_epoch", "?")) for m in metrics)
        print(f"| {preset} | {len(runs)} | {epochs} | " + " | ".join(cells) + " |")
    print()
    print("| difference | F1⁻ (95 % CI) | PxAP (95 % CI) |")
    print("|---|---|---|")
    for baseline in args.baselines:
        result = bootstrap(images[args.method], images[baseline], args.draws)
        cells = [f"{e:+.1f} [{lo:+.1f}, {hi:+.1f}]" for e, lo, hi in (result["f1_neg"], result["pxap"])]
        print(f"| {args.method} − {baseline} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
