"""Boxes from masks, duplicate-aware splits and the variable-size policy (hand-computed expectations)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsol.data.duplicates import duplicate_groups
from wsol.data.format import DatasetFormatError, DatasetInfo, ImageRecord, read_dataset_info, write_dataset
from wsol.data.mask_boxes import MaskBoxOptions, component_boxes, object_box
from wsol.data.size_policy import resolve_size_policy
from wsol.data.splits import grouped_stratified_split


def test_component_boxes_drop_specks_keep_largest_and_instances():
    labels = np.zeros((20, 30), np.uint8)
    labels[2:6, 3:10] = 1  # 28 px
    labels[10:19, 20:29] = 1  # 81 px
    labels[0, 29] = 1  # 1 px speck: 1/600 = 0.17 %
    assert component_boxes(labels, MaskBoxOptions(0.001)) == [(3, 2, 10, 6), (20, 10, 29, 19), (29, 0, 30, 1)]
    assert component_boxes(labels, MaskBoxOptions(0.01)) == [(3, 2, 10, 6), (20, 10, 29, 19)]
    assert component_boxes(labels, MaskBoxOptions(0.5)) == [(20, 10, 29, 19)]  # the largest always stays
    assert object_box(labels) == (3, 0, 30, 19)
    touching = np.zeros((8, 8), np.uint8)
    touching[1:4, 1:4], touching[4:7, 2:7] = 1, 2  # two instance ids in one 8-connected blob
    assert component_boxes(touching, MaskBoxOptions(0.0)) == [(1, 1, 4, 4), (2, 4, 7, 7)]
    assert component_boxes(np.zeros((4, 4), np.uint8)) == [] and object_box(np.zeros((4, 4))) is None


def test_grouped_split_keeps_groups_and_fills_quotas():
    labels = {f"a{i}": 0 for i in range(10)} | {f"b{i}": 1 for i in range(5)}
    groups = [["a0", "a1", "a2"], ["a3", "b0"], ["b1", "b2"]]
    for seed in range(20):
        split = grouped_stratified_split(labels, groups, [("test", 0.2), ("val", 0.1)], seed=seed)
        assert split == grouped_stratified_split(
            labels, groups[::-1], [("test", 0.2), ("val", 0.1)], seed=seed
        )
        for group in groups:
            assert len({split[key] for key in group}) == 1
        for cls in ("a", "b"):
            members = [key for key in labels if key.startswith(cls)]
            # ceil(0.2 n) test keys at least (a group may overshoot), one group at least in train.
            assert sum(split[k] == "test" for k in members) >= {"a": 2, "b": 1}[cls]
            assert any(split[k] == "train" for k in members)
    with pytest.raises(ValueError, match="disjoint"):
        grouped_stratified_split(labels, [["a0", "a1"], ["a1"]], [("test", 0.2)], seed=0)


def test_duplicate_groups_find_rescaled_copies_not_distinct_images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(4):
        grid = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(grid).resize((40, 32), Image.Resampling.BICUBIC)
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    Image.open(paths[1]).resize((52, 41), Image.Resampling.BILINEAR).save(tmp_path / "copy.jpg", quality=90)
    paths.append(tmp_path / "copy.jpg")
    assert duplicate_groups(paths) == [[1, 4]]


def _dataset(root, sizes):
    records = [ImageRecord(f"{i}.png", i % 2, w, h) for i, (w, h) in enumerate(sizes)]
    write_dataset(root, DatasetInfo("d", 2, []), {"train": records, "test": records})
    return root


def test_size_policy_frame_only_for_varying_sizes(tmp_path):
    varying = _dataset(tmp_path / "v", [(40, 30), (41, 30)])
    fixed = _dataset(tmp_path / "f", [(40, 30), (40, 30)])
    assert resolve_size_policy({"hflip": True}, varying, ["train"], 64) == {"hflip": True, "frame": 64}
    assert resolve_size_policy({"hflip": True}, fixed, ["train"], 64) == {"hflip": True}
    assert resolve_size_policy({"crop_size": 24}, varying, ["train"], 64) == {
        "crop_size": 24,
        "eval_resize": [64, 64],
    }
    assert resolve_size_policy({"image_size": 50}, varying, ["train"], 64)["frame"] == 64
    assert resolve_size_policy({"frame": 32}, varying, ["train"], 64) == {"frame": 32}


def test_no_object_class_records_must_have_no_mask_or_box(tmp_path):
    info = DatasetInfo("d", 2, [], no_object_classes=[1])
    bad = [ImageRecord("a.png", 1, 4, 4, boxes=((0, 0, 2, 2),))]
    with pytest.raises(DatasetFormatError, match="no-object class"):
        write_dataset(tmp_path / "bad", info, {"test": bad})
    write_dataset(tmp_path / "ok", info, {"test": [ImageRecord("a.png", 1, 4, 4)]})
    assert read_dataset_info(tmp_path / "ok").no_object_classes == [1]
