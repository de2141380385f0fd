"""How much of each object Hide-and-Seek hides: share of (training image, draw) pairs with ≥ 50 %, ≥ 90 % and
all of the object's mask hidden, with a run's own HaS options and frame.

    python benchmarks/has_lesion_coverage.py RUN_DIR [--draws 20]

Reads ``RUN_DIR/config.yaml`` (a ``has`` / ``has_lite0`` run), loads the training split's masks at the run's
evaluation frame, and for each patch size of ``grid_sizes`` (equally likely, as in training) draws the hidden
patches ``--draws`` times with the method's own ``hide_patches`` (docs/methods.md, "Results on BUSI").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.methods.has import hide_patches
from wsol.training.inference import eval_transform
from wsol.training.run import resolve_data_root


def hidden_shares(masks: torch.Tensor, grid_sizes: list[int], drop_rate: float, draws: int) -> torch.Tensor:
    """Per (image, draw): the share of each mask's pixels that fall in hidden patches."""
    area = masks.flatten(1).sum(1)
    shares = []
    for grid in grid_sizes:
        for _ in range(draws):
            if grid == 0:
                shares.append(torch.zeros(len(masks)))
                continue
            rows, cols = -(-masks.shape[-2] // grid), -(-masks.shape[-1] // grid)
            keep = torch.rand(len(masks), rows, cols) >= drop_rate
            shares.append(1 - hide_patches(masks, keep, grid, 0.0).flatten(1).sum(1) / area)
    return torch.cat(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = yaml.safe_load((args.run / "config.yaml").read_text())
    options = config["method"]["options"]
    dataset = WSOLDataset(resolve_data_root(config["data"]), "train", eval_transform(config))
    loader = DataLoader(dataset, batch_size=64, collate_fn=collate)
    masks = torch.cat([batch["mask"][:, :1] > 0.5 for batch in loader])
    masks = masks[masks.flatten(1).any(1)].float()
    grid_sizes = options.get("grid_sizes") or [options.get("grid_size", 4)]
    shares = hidden_shares(masks, grid_sizes, options.get("drop_rate", 0.5), args.draws)
    area = 100 * float(masks.mean())
    print(f"{len(masks)} training images with an object, mean area {area:.1f} % of the frame")
    for threshold, name in ((0.5, "≥ 50 %"), (0.9, "≥ 90 %"), (0.999, "all")):
        share = 100 * float((shares >= threshold).float().mean())
        print(f"{name} of the object hidden: {share:.1f} % of draws")


if __name__ == "__main__":
    main()
