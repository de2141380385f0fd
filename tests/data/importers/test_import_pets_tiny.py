"""Oxford-IIIT Pet (trimaps, head XMLs, disguised files) and Tiny ImageNet-200 (inclusive boxes, val file)."""

from __future__ import annotations

import numpy as np
import pytest
from realdata_fixtures import build_pets, build_tiny_imagenet, pet_trimap

from wsol.data.dataset import WSOLDataset
from wsol.data.format import read_dataset_info, read_split
from wsol.data.images import read_mask
from wsol.data.importers import SourceLayoutError, import_dataset


def _records(out):
    return {r.image_id: (split, r) for split in read_dataset_info(out).splits for r in read_split(out, split)}


def test_pets_breeds_trimap_mask_ignore_and_boxes(tmp_path):
    src = build_pets(tmp_path / "pets")
    report = import_dataset("oxford_pets", src, tmp_path / "out")
    out = tmp_path / "out"
    info = read_dataset_info(out)
    assert len(info.class_names) == 37 and info.class_names[:2] == ["Abyssinian", "american_bulldog"]
    records = _records(out)
    assert "Abyssinian_99.jpg" not in records  # on disk, in no list
    assert records["Abyssinian_3.jpg"][0] == records["american_bulldog_3.jpg"][0] == "test"
    assert not report.skipped  # PNG data and a CMYK JPEG under .jpg both decode
    split, record = records["Abyssinian_1.jpg"]
    assert record.label == 0 and split in ("train", "val")
    trimap = pet_trimap()
    np.testing.assert_array_equal(read_mask(out / "masks" / record.mask_paths[0]) > 0, trimap == 1)
    np.testing.assert_array_equal(read_mask(out / "masks" / record.ignore_path) > 0, trimap == 3)
    # The 1-pixel speck (0.2 % of 24 x 20 >= 0.1 %) is its own component; the object box spans both.
    assert sorted(record.boxes) == [(1.0, 18.0, 2.0, 19.0), (6.0, 4.0, 18.0, 14.0)]
    extra = dict(record.extra_boxes)
    assert extra["object"] == (1.0, 4.0, 18.0, 19.0)
    assert extra["head"] == (6.0, 4.0, 12.0, 9.0)  # VOC (7, 5, 12, 9) 1-based inclusive -> continuous
    assert "head" not in dict(records["Abyssinian_2.jpg"][1].extra_boxes)
    sample = WSOLDataset(out, split)[[r.image_id for r in read_split(out, split)].index("Abyssinian_1.jpg")]
    assert sample["ignore"].sum() == (trimap == 3).sum()


def test_pets_species_and_val_draw(tmp_path):
    src = build_pets(tmp_path / "pets")
    import_dataset("oxford_pets_species", src, tmp_path / "out")
    out = tmp_path / "out"
    assert read_dataset_info(out).class_names == ["cat", "dog"]
    records = _records(out)
    assert records["Abyssinian_1.jpg"][1].label == 0 and records["american_bulldog_1.jpg"][1].label == 1
    # ceil(20 %) of each class of trainval goes to val: cats have 2 + 17 trainval images, dogs 2 + 18.
    val = [r for split, r in records.values() if split == "val"]
    assert sorted(r.label for r in val) == [0] * 4 + [1] * 4


def test_pets_missing_class_and_overlap_are_refused(tmp_path):
    src = build_pets(tmp_path / "pets", classes=36)
    with pytest.raises(SourceLayoutError, match=r"class id\(s\) \[37\]"):
        import_dataset("oxford_pets", src, tmp_path / "out")
    src = build_pets(tmp_path / "pets2")
    with open(src / "annotations" / "test.txt", "a") as handle:
        handle.write("Abyssinian_1 1 1 1\n")
    with pytest.raises(SourceLayoutError, match="both trainval.txt and test.txt"):
        import_dataset("oxford_pets", src, tmp_path / "out2")


def test_tiny_imagenet_inclusive_boxes_val_as_test(tmp_path):
    src = build_tiny_imagenet(tmp_path)
    report = import_dataset("tiny_imagenet", src, tmp_path / "out")
    out = tmp_path / "out"
    info = read_dataset_info(out)
    assert info.class_names == ["goldfish", "something"]
    assert report.counts == {"train": 18, "val": 2, "test": 3}
    records = _records(out)
    assert not any(image_id.startswith("test/") for image_id in records)
    split, record = records["train/n01443537/images/n01443537_3.JPEG"]
    assert record.boxes == ((3.0, 10.0, 64.0, 44.0),)  # "3 10 63 43" inclusive
    split, record = records["val/images/val_1.JPEG"]
    assert split == "test" and record.label == 1 and record.boxes == ((0.0, 0.0, 32.0, 21.0),)
    greyscale = WSOLDataset(out, records["train/n01443537/images/n01443537_0.JPEG"][0])
    assert all(greyscale[i]["image"].shape == (3, 64, 64) for i in range(len(greyscale)))


def test_tiny_imagenet_unknown_val_wnid(tmp_path):
    src = build_tiny_imagenet(tmp_path)
    with open(src / "val" / "val_annotations.txt", "a") as handle:
        handle.write("val_9.JPEG\tn00000001\t0\t0\t5\t5\n")
    with pytest.raises(SourceLayoutError, match="n00000001"):
        import_dataset("tiny_imagenet", src, tmp_path / "out")
