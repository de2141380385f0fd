"""BUSI: multi-file lesions, empty normal masks (no-object class), duplicates kept in one split."""

from __future__ import annotations

import numpy as np
import torch
from realdata_fixtures import build_busi, busi_lesion

from wsol.data.check import check_dataset
from wsol.data.dataset import WSOLDataset, collate
from wsol.data.format import read_dataset_info, read_split
from wsol.data.images import read_mask
from wsol.data.importers import import_dataset


def _all_records(out):
    return {r.image_id: (split, r) for split in ("train", "val", "test") for r in read_split(out, split)}


def test_busi_union_masks_boxes_and_no_object_class(tmp_path):
    src = build_busi(tmp_path)
    report = import_dataset("busi", src, tmp_path / "out")
    out = tmp_path / "out"
    info = read_dataset_info(out)
    assert info.class_names == ["benign", "malignant", "normal"]
    assert info.no_object_classes == [2]
    assert sum(report.counts.values()) == 16
    records = _all_records(out)
    _, lesion = records["benign/benign (1).png"]
    mask = read_mask(out / "masks" / lesion.mask_paths[0]) > 0
    first, second = busi_lesion()
    np.testing.assert_array_equal(mask, first | second)
    # Two parts -> two component boxes (rows 4-9/cols 5-12, rows 20-25/cols 28-35), plus the whole-object box.
    assert sorted(lesion.boxes) == [(5.0, 4.0, 13.0, 10.0), (28.0, 20.0, 36.0, 26.0)]
    assert lesion.extra_boxes == (("object", (5.0, 4.0, 36.0, 26.0)),)
    for image_id, (_, record) in records.items():
        if image_id.startswith("normal/"):
            assert record.label == 2 and not record.has_mask and not record.boxes
    assert not any("normal" in path.name for path in (out / "masks").rglob("*.png"))
    check = check_dataset(out, decode=True)
    assert check.ok and "no-object classes (no mask or box; classified only): [2]" in check.format()


def test_busi_duplicates_share_a_split_for_every_seed(tmp_path):
    src = build_busi(tmp_path)
    for seed in (0, 1, 2, 3):
        report = import_dataset("busi", src, tmp_path / f"out{seed}", seed=seed)
        records = _all_records(tmp_path / f"out{seed}")
        assert records["benign/benign (2).png"][0] == records["malignant/malignant (1).png"][0]
        assert records["benign/benign (3).png"][0] == records["benign/benign (4).png"][0]
        assert any("several classes" in warning for warning in report.warnings)
        groups = read_dataset_info(tmp_path / f"out{seed}").extra["duplicate_groups"]
        assert sorted(map(sorted, groups)) == [
            ["benign/benign (2).png", "malignant/malignant (1).png"],
            ["benign/benign (3).png", "benign/benign (4).png"],
        ]
    again = import_dataset("busi", src, tmp_path / "again", seed=3)
    assert again.counts == report.counts
    assert _all_records(tmp_path / "again").keys() == records.keys()


def test_busi_samples_mark_normal_images_as_no_object(tmp_path):
    import_dataset("busi", build_busi(tmp_path), tmp_path / "out")
    seen = set()
    for split in ("train", "val", "test"):
        dataset = WSOLDataset(tmp_path / "out", split)
        for index in range(len(dataset)):
            sample = dataset[index]
            normal = sample["label"] == 2
            assert sample["has_object"] is not normal
            assert not (normal and sample["has_mask"])
            seen.add(normal)
    assert seen == {True, False}
    batch = collate([WSOLDataset(tmp_path / "out", "train")[0]] * 2)
    assert batch["has_object"].dtype == torch.bool and batch["has_object"].shape == (2,)
