"""GlaS importer on a Warwick-QU fixture (flat BMPs, palette instance annotations, CRLF Grade.csv)."""

from __future__ import annotations

import numpy as np
import pytest
from importer_fixtures import build_glas, glas_anno, tree_bytes
from PIL import Image

from wsol.data.format import read_dataset_info, read_split
from wsol.data.importers import SourceLayoutError, import_dataset
from wsol.data.importers.glas import PAPER_VALID

# The paper's 18 validation images (10 malignant, then 8 benign), 4 more training images and 3 test images.
GRADES = {name: ("malignant" if k < 10 else "benign") for k, name in enumerate(PAPER_VALID)}
GRADES.update({"train_1": "benign", "train_3": "malignant", "train_4": "malignant", "train_6": "benign"})
GRADES.update({"testA_1": "benign", "testA_2": "malignant", "testB_1": "malignant"})


@pytest.fixture(scope="module")
def glas_src(tmp_path_factory: pytest.TempPathFactory):
    return build_glas(tmp_path_factory.mktemp("glas") / "Warwick QU Dataset (Released 2016_07_08)", GRADES)


def test_paper_split_labels_and_instance_masks(glas_src, tmp_path):
    report = import_dataset("glas", glas_src, tmp_path / "out")
    assert report.counts == {"train": 4, "val": 18, "test": 3}
    assert report.skipped == []
    info = read_dataset_info(tmp_path / "out")
    assert info.class_names == ["benign", "malignant"]
    assert info.image_root == str(glas_src)
    valid = read_split(tmp_path / "out", "val")
    assert {r.image_id for r in valid} == {f"{name}.bmp" for name in PAPER_VALID}
    labels = {
        r.image_id: r.label for split in ("train", "val", "test") for r in read_split(tmp_path / "out", split)
    }
    assert labels["train_24.bmp"] == 1 and labels["train_52.bmp"] == 0 and labels["testA_2.bmp"] == 1
    test = {r.image_id: r for r in read_split(tmp_path / "out", "test")}
    record = test["testB_1.bmp"]
    assert (record.width, record.height) == (16, 12)
    assert record.mask_paths == ("testB_1_anno.png",)
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "testB_1_anno.png"))
    np.testing.assert_array_equal(mask, glas_anno())  # instance ids kept


def test_seeded_split_is_stratified_and_reproducible(glas_src, tmp_path):
    import_dataset("glas", glas_src, tmp_path / "a", seed=3)
    import_dataset("glas", glas_src, tmp_path / "b", seed=3)
    valid = read_split(tmp_path / "a", "val")
    # 10 benign + 12 malignant training images: ceil(2.0) + ceil(2.4) = 2 + 3 validation images.
    assert sorted(r.label for r in valid) == [0, 0, 1, 1, 1]
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_import_twice_is_byte_identical(glas_src, tmp_path):
    import_dataset("glas", glas_src, tmp_path / "out", copy=True)
    first = tree_bytes(tmp_path / "out")
    import_dataset("glas", glas_src, tmp_path / "out", copy=True, overwrite=True)
    assert tree_bytes(tmp_path / "out") == first
    assert read_dataset_info(tmp_path / "out").image_root == "images"
    assert first["images/train_1.bmp"] == (glas_src / "train_1.bmp").read_bytes()


def test_undecodable_image_is_reported_not_fatal(tmp_path):
    src = build_glas(tmp_path / "src", GRADES)
    (src / "train_3.bmp").write_bytes(b"BM this is not a bitmap")
    (src / "testA_1_anno.bmp").unlink()
    report = import_dataset("glas", src, tmp_path / "out")
    assert report.counts == {"train": 3, "val": 18, "test": 2}
    reasons = dict(report.skipped)
    assert "does not decode" in reasons[str(src / "train_3.bmp")]
    assert "testA_1_anno.bmp not found" in reasons[str(src / "testA_1.bmp")]
    assert read_dataset_info(tmp_path / "out").extra["skipped"] == [list(entry) for entry in report.skipped]


def test_missing_grade_csv_is_refused_and_output_untouched(tmp_path):
    src = build_glas(tmp_path / "src", GRADES)
    import_dataset("glas", src, tmp_path / "out", copy=True)
    previous = tree_bytes(tmp_path / "out")
    (src / "Grade.csv").unlink()
    with pytest.raises(SourceLayoutError, match=r"Grade\.csv not found"):
        import_dataset("glas", src, tmp_path / "out", overwrite=True)
    assert tree_bytes(tmp_path / "out") == previous


def test_bad_grade_names_the_line(tmp_path):
    src = build_glas(tmp_path / "src", {"train_1": "benign", "testA_1": "benign"})
    text = (src / "Grade.csv").read_bytes().replace(b" benign", b" healthy", 1)
    (src / "Grade.csv").write_bytes(text)
    with pytest.raises(SourceLayoutError, match=r"Grade\.csv:2: grade 'healthy' of 'train_1'"):
        import_dataset("glas", src, tmp_path / "out", seed=0)


def test_paper_split_needs_the_paper_images(tmp_path):
    src = build_glas(tmp_path / "src", {"train_1": "benign", "train_2": "benign", "testA_1": "benign"})
    with pytest.raises(SourceLayoutError, match="pass --seed"):
        import_dataset("glas", src, tmp_path / "out")


def test_grade_csv_without_rows_is_refused(tmp_path):
    src = build_glas(tmp_path / "src", {})
    with pytest.raises(SourceLayoutError, match="no image listed in the source"):
        import_dataset("glas", src, tmp_path / "out", seed=0)
