"""Every bad-input case raises a DatasetFormatError naming the file (and line) and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from wsol.data import DatasetFormatError, DatasetInfo, ImageRecord, WSOLDataset, read_split, write_dataset
from wsol.data.images import write_png
from wsol.io import atomic_directory


def _make(
    root: Path, records: list[ImageRecord], *, num_classes: int = 2, size: tuple[int, int] = (12, 10)
) -> Path:
    """A two-image dataset: images 12 wide x 10 high, a mask for each record that lists one."""
    rng = np.random.default_rng(0)
    with atomic_directory(root) as tmp:
        for record in records:
            write_png(
                tmp / "images" / record.image_id, rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            )
            for mask_path in record.mask_paths:
                mask = np.zeros((size[1], size[0]), np.uint8)
                mask[2:5, 3:8] = 255
                write_png(tmp / "masks" / mask_path, mask)
        write_dataset(tmp, DatasetInfo(name="t", num_classes=num_classes, splits=[]), {"train": records})
    return root


def _records() -> list[ImageRecord]:
    return [
        ImageRecord("a.png", 0, 12, 10, boxes=((3, 2, 8, 5),), mask_paths=("a.png",)),
        ImageRecord("b.png", 1, 12, 10, boxes=((0, 0, 12, 10),), mask_paths=("b.png",)),
    ]


def test_truncated_image_names_the_file_and_the_listing(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    path = root / "images" / "b.png"
    path.write_bytes(path.read_bytes()[:60])
    dataset = WSOLDataset(root, "train")
    dataset[0]  # the intact image still loads
    with pytest.raises(
        DatasetFormatError, match=r"b\.png: unreadable or truncated image file .*image_ids\.txt"
    ):
        dataset[1]


def test_missing_image_file(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    (root / "images" / "a.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"a\.png: image file not found"):
        WSOLDataset(root, "train")[0]


def test_mask_of_another_size_than_its_image(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    write_png(root / "masks" / "a.png", np.zeros((10, 11), np.uint8))
    with pytest.raises(
        DatasetFormatError, match=r"masks/a\.png: mask size 11x10 differs from the image size 12x10"
    ):
        WSOLDataset(root, "train")[0]


def test_image_of_another_size_than_its_metadata(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    write_png(root / "images" / "a.png", np.zeros((10, 13, 3), np.uint8))
    with pytest.raises(
        DatasetFormatError, match=r"a\.png: decoded size 13x10 differs from the 12x10 .*image_sizes"
    ):
        WSOLDataset(root, "train")[0]


def test_unknown_label(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    labels = root / "metadata" / "train" / "class_labels.txt"
    labels.write_text("a.png,0\nb.png,2\n")
    with pytest.raises(
        DatasetFormatError, match=re.escape(f"{labels}:2: unknown label 2 for 'b.png' (expected 0..1)")
    ):
        read_split(root, "train")


def test_unknown_label_refused_at_write(tmp_path: Path) -> None:
    records = [ImageRecord("a.png", 5, 12, 10)]
    with pytest.raises(DatasetFormatError, match=r"label 5 of 'a.png' outside 0\.\.1"):
        _make(tmp_path / "ds", records)
    assert not (tmp_path / "ds").exists()  # nothing half-written


def test_duplicate_image_id(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    ids = root / "metadata" / "train" / "image_ids.txt"
    ids.write_text("a.png\nb.png\n\na.png\n")
    # the blank line still counts: the duplicate is on line 4 of the file
    with pytest.raises(
        DatasetFormatError, match=re.escape(f"{ids}:4: duplicate image id 'a.png' (first on line 1)")
    ):
        read_split(root, "train")


def test_duplicate_image_id_refused_at_write(tmp_path: Path) -> None:
    records = [ImageRecord("a.png", 0, 12, 10), ImageRecord("a.png", 1, 12, 10)]
    with pytest.raises(DatasetFormatError, match="duplicate image id 'a.png'"):
        _make(tmp_path / "ds", records)
    assert not (tmp_path / "ds").exists()


def test_box_outside_the_image(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    boxes = root / "metadata" / "train" / "localization.txt"
    boxes.write_text("a.png,3,2,8,5\nb.png,0,0,13,10\n")
    expected = f"{boxes}:2: box (0.0, 0.0, 13.0, 10.0) lies outside the 12x10 image 'b.png'"
    with pytest.raises(DatasetFormatError, match=re.escape(expected)):
        read_split(root, "train")


@pytest.mark.parametrize(
    ("line", "message"), [("a.png,5,2,3,4", "inverted box"), ("a.png,nan,2,3,4", "non-finite")]
)
def test_inverted_or_non_finite_box(tmp_path: Path, line: str, message: str) -> None:
    root = _make(tmp_path / "ds", _records())
    boxes = root / "metadata" / "train" / "localization.txt"
    boxes.write_text(line + "\n")
    with pytest.raises(DatasetFormatError, match=re.escape(f"{boxes}:1: {message}")):
        read_split(root, "train")


def test_empty_split(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    ids = root / "metadata" / "train" / "image_ids.txt"
    ids.write_text("\n")
    with pytest.raises(DatasetFormatError, match=re.escape(f"{ids}: the split is empty")):
        WSOLDataset(root, "train")


def test_empty_split_refused_at_write(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="refusing to write an empty split"):
        _make(tmp_path / "ds", [])
    assert not (tmp_path / "ds").exists()


def test_unknown_split_and_missing_dataset(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    with pytest.raises(DatasetFormatError, match=r"dataset\.json: no split 'test' \(have \['train'\]\)"):
        WSOLDataset(root, "test")
    with pytest.raises(DatasetFormatError, match=r"dataset\.json: file not found"):
        WSOLDataset(tmp_path / "nowhere", "train")


def test_second_label_line_for_an_image(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    labels = root / "metadata" / "train" / "class_labels.txt"
    labels.write_text("a.png,0\nb.png,1\na.png,1\n")
    with pytest.raises(
        DatasetFormatError, match=re.escape(f"{labels}:3: second label line for image id 'a.png'")
    ):
        read_split(root, "train")


def test_failed_write_leaves_previous_dataset_untouched(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(DatasetFormatError):
        _make(root, [ImageRecord("c.png", 9, 12, 10)])
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert [r.image_id for r in read_split(root, "train")] == ["a.png", "b.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.tmp")]


def test_garbage_mask_file(tmp_path: Path) -> None:
    root = _make(tmp_path / "ds", _records())
    (root / "masks" / "a.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetFormatError, match=r"masks/a\.png: unreadable or truncated mask file"):
        WSOLDataset(root, "train")[0]
