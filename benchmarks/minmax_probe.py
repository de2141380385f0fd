"""Probe trained min-max entropy checkpoints on the test split (no training).

    python benchmarks/minmax_probe.py RUN_DIR [RUN_DIR ...]

Per run (``checkpoints/best.ckpt``): accuracy of the localizer's own scores s on clean images, of the
classifier C on the clean image X, on X⁺ = X ⊙ M⁺ (the method's prediction) and on X⁻ = X ⊙ (1 − M⁺) (the
image with the top-map region erased), C's mean entropy on X⁻ relative to log K, the mean area of M⁺ > 0.5
against the objects' area, and the foreground precision and recall of M⁺ > 0.5 over all test pixels.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.methods.checkpoint import load_checkpoint
from wsol.methods.minmax_entropy import MinMaxEntropy
from wsol.training.inference import eval_transform
from wsol.training.run import resolve_data_root

COLUMNS = (
    "acc_loc",
    "acc_full",
    "acc_pos",
    "acc_neg",
    "entropy_neg",
    "area_mask",
    "area_object",
    "precision",
    "recall",
)


@torch.no_grad()
def probe(run: Path) -> dict[str, float]:
    loaded = load_checkpoint(run / "checkpoints" / "best.ckpt")
    method, config = loaded.method, loaded.config
    if not isinstance(method, MinMaxEntropy):
        raise ValueError(f"{run}: not a min-max entropy run")
    dataset = WSOLDataset(resolve_data_root(config["data"]), "test", eval_transform(config))
    sums = dict.fromkeys(COLUMNS, 0.0)
    true_positive = predicted = positive = 0.0
    for batch in DataLoader(dataset, batch_size=32, collate_fn=collate):
        images, labels, objects = batch["image"], batch["label"], batch["mask"] > 0.5
        scores, mask = method.localize(images, normalization="per_sample")
        negative = method.classify(images * (1 - mask)).softmax(dim=1)
        selected = mask > 0.5
        sums["acc_loc"] += float((scores.argmax(1) == labels).sum())
        sums["acc_full"] += float((method.classify(images).argmax(1) == labels).sum())
        sums["acc_pos"] += float((method.classify(images * mask).argmax(1) == labels).sum())
        sums["acc_neg"] += float((negative.argmax(1) == labels).sum())
        entropy = -(negative * negative.clamp_min(1e-12).log()).sum(1) / math.log(negative.shape[1])
        sums["entropy_neg"] += float(entropy.sum())
        sums["area_mask"] += float(selected.float().mean(dim=(1, 2, 3)).sum())
        sums["area_object"] += float(objects.float().mean(dim=(1, 2, 3)).sum())
        true_positive += float((selected & objects).sum())
        predicted += float(selected.sum())
        positive += float(objects.sum())
    row = {key: 100 * value / len(dataset) for key, value in sums.items()}
    row["precision"] = 100 * true_positive / max(predicted, 1)
    row["recall"] = 100 * true_positive / max(positive, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| run | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for run in args.runs:
        row = probe(run)
        print(f"| {run.name} | " + " | ".join(f"{row[key]:.1f}" for key in COLUMNS) + " |")


if __name__ == "__main__":
    main()
