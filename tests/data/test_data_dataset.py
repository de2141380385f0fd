"""WSOLDataset and collate: batch contract, boxes from masks, ignore maps, worker-independent draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from wsol.data import (
    DatasetInfo,
    ImageRecord,
    TransformConfig,
    WSOLDataset,
    boxes_from_mask,
    build_transforms,
    collate,
    denormalize,
    write_dataset,
)
from wsol.data.images import read_image, write_png
from wsol.io import atomic_directory


def test_batch_contract(tiny_synth: Path) -> None:
    transform = build_transforms(
        TransformConfig.from_dict({"preset": "synthetic", "crop_size": 56}), train=True
    )
    dataset = WSOLDataset(tiny_synth, "train", transform)
    batch = collate([dataset[i] for i in range(4)])
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (4, 3, 56, 56)
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (4,)
    assert batch["mask"].dtype == torch.float32 and batch["mask"].shape == (4, 1, 56, 56)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert batch["ignore"].dtype == torch.bool and batch["ignore"].shape == (4, 1, 56, 56)
    assert batch["has_mask"].dtype == torch.bool and batch["has_mask"].all()
    assert len(batch["boxes"]) == 4 and all(
        b.dtype == torch.float32 and b.shape[1] == 4 for b in batch["boxes"]
    )
    assert batch["image_id"] == [f"train/train_{i:05d}.png" for i in range(4)]
    assert batch["orig_size"].dtype == torch.int64 and batch["orig_size"].tolist() == [[64, 64]] * 4
    # normalised with mean/std 0.5: values in [-1, 1], and denormalize inverts it
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    eval_sample = WSOLDataset(tiny_synth, "train")[0]
    raw = read_image(tiny_synth / "images" / "train" / "train_00000.png")
    assert torch.allclose(
        denormalize(eval_sample["image"]) * 255, torch.from_numpy(raw).permute(2, 0, 1).float()
    )
    for boxes, mask in zip(batch["boxes"], batch["mask"], strict=True):  # boxes follow the cropped masks
        assert all(mask[0, int(y0) : int(y1), int(x0) : int(x1)].any() for x0, y0, x1, y1 in boxes.tolist())


def test_load_masks_false(tiny_synth: Path) -> None:
    sample = WSOLDataset(tiny_synth, "val", load_masks=False)[0]
    assert not sample["has_mask"] and not sample["mask"].any() and not sample["ignore"].any()
    assert len(sample["boxes"]) >= 1  # boxes still come from the metadata


def _masks_only_dataset(root: Path) -> Path:
    """Two images with masks but no boxes: an instance-labelled one and a binary one with two blobs."""
    instance = np.zeros((10, 16), np.uint8)
    instance[1:4, 1:5] = 1
    instance[5:9, 8:15] = 2
    binary = np.zeros((10, 16), np.uint8)
    binary[0:2, 0:3] = 255
    binary[6:10, 10:16] = 255
    ignore = np.zeros((10, 16), np.uint8)
    ignore[0:5, 0:8] = 255
    with atomic_directory(root) as tmp:
        for name in ("a.png", "b.png"):
            write_png(tmp / "images" / name, np.full((10, 16, 3), 128, np.uint8))
        write_png(tmp / "masks" / "a.png", instance)
        write_png(tmp / "masks" / "b.png", binary)
        write_png(tmp / "masks" / "b_ignore.png", ignore)
        records = [
            ImageRecord("a.png", 0, 16, 10, mask_paths=("a.png",)),
            ImageRecord("b.png", 1, 16, 10, mask_paths=("b.png",), ignore_path="b_ignore.png"),
        ]
        write_dataset(tmp, DatasetInfo(name="m", num_classes=2, splits=[]), {"test": records})
    return root


def test_boxes_are_derived_from_masks_when_only_masks_exist(tmp_path: Path) -> None:
    dataset = WSOLDataset(_masks_only_dataset(tmp_path / "m"), "test")
    assert dataset[0]["boxes"].tolist() == [[1, 1, 5, 4], [8, 5, 15, 9]]  # one per instance id
    assert dataset[1]["boxes"].tolist() == [[0, 0, 3, 2], [10, 6, 16, 10]]  # one per connected component


def test_ignore_excludes_foreground(tmp_path: Path) -> None:
    sample = WSOLDataset(_masks_only_dataset(tmp_path / "m"), "test")[1]
    ignore = sample["ignore"][0]
    # wsolevaluation: ignore := ignore region and not foreground
    assert ignore[0:5, 0:8].sum() == 5 * 8 - 2 * 3 and not ignore[0:2, 0:3].any() and not ignore[5:].any()


def test_boxes_from_mask_hand_computed() -> None:
    mask = np.zeros((6, 7), np.uint8)
    mask[2, 3] = 1
    assert boxes_from_mask(mask).tolist() == [[3, 2, 4, 3]]
    assert boxes_from_mask(np.zeros((3, 3), np.uint8)).shape == (0, 4)


def test_collate_refuses_images_of_different_sizes() -> None:
    def sample(size: int) -> dict:
        return {
            "image": torch.zeros(3, size, size),
            "label": 0,
            "mask": torch.zeros(1, size, size),
            "ignore": torch.zeros(1, size, size, dtype=torch.bool),
            "has_mask": False,
            "boxes": torch.zeros(0, 4),
            "image_id": "x",
            "orig_size": (size, size),
        }

    with pytest.raises(
        ValueError, match=r"images of different sizes .* set crop_size \(train\), eval_resize"
    ):
        collate([sample(8), sample(9)])


def test_draws_do_not_depend_on_workers_and_follow_the_epoch(tiny_synth: Path) -> None:
    transform = build_transforms(
        TransformConfig.from_dict({"preset": "synthetic", "crop_size": 56}), train=True
    )
    dataset = WSOLDataset(tiny_synth, "train", transform, seed=11)

    def images(workers: int) -> torch.Tensor:
        loader = DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate)
        return torch.cat([batch["image"] for batch in loader])

    single = images(0)
    assert torch.equal(single, images(2))
    dataset.set_epoch(1)
    assert not torch.equal(single, images(0))
    dataset.set_epoch(0)
    assert torch.equal(single, images(0))
