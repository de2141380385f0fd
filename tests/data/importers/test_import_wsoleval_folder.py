"""wsolevaluation metadata (OpenImages masks + ignore, CUB boxes) and the folder-of-classes importer."""

from __future__ import annotations

import numpy as np
import pytest
from importer_fixtures import build_folder, build_openimages, build_wsoleval_cub
from PIL import Image

from wsol.data.format import read_dataset_info, read_split
from wsol.data.importers import SourceLayoutError, import_dataset


def test_openimages_instance_masks_and_ignore_resized_to_the_image(tmp_path):
    src = build_openimages(tmp_path / "wsolevaluation")
    report = import_dataset("openimages", src, tmp_path / "out")
    assert report.counts == {"train": 2, "test": 2}
    assert any("resized (nearest)" in warning for warning in report.warnings)
    test = {r.image_id: r for r in read_split(tmp_path / "out", "test")}
    a = test["test/01226z/a.jpg"]
    assert a.mask_paths == ("test/01226z/a_m01226z_1.png", "test/01226z/a_m01226z_2.png")
    assert a.ignore_path == "test/01226z/a_ignore.png"
    first = np.asarray(Image.open(tmp_path / "out" / "masks" / a.mask_paths[0]))
    assert first.shape == (12, 16)  # the 8x6 mask scaled x2 to the 16x12 image
    expected = np.zeros((12, 16), dtype=np.uint8)
    expected[0:4, 0:4] = 255
    np.testing.assert_array_equal(first, expected)
    ignore = np.asarray(Image.open(tmp_path / "out" / "masks" / a.ignore_path))
    assert (ignore[:, 12:] == 255).all() and (ignore[:, :12] == 0).all()
    assert read_split(tmp_path / "out", "train")[0].mask_paths == ()
    assert read_dataset_info(tmp_path / "out").class_names == ["0", "1"]


def test_openimages_ignore_on_a_later_line_is_refused(tmp_path):
    src = build_openimages(tmp_path / "wsolevaluation")
    path = src / "metadata" / "OpenImages" / "test" / "localization.txt"
    lines = path.read_text().splitlines()
    lines[1] += "test/01226z/a_ignore.png"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        SourceLayoutError, match=r"localization\.txt:2: ignore path on a line other than the first"
    ):
        import_dataset("openimages", src, tmp_path / "out")


def test_wsoleval_cub_boxes_splits_and_class_names(tmp_path):
    src = build_wsoleval_cub(tmp_path / "wsolevaluation")
    report = import_dataset("cub_wsolevaluation", src, tmp_path / "out")
    assert report.counts == {"train": 2, "val": 1, "test": 1}
    info = read_dataset_info(tmp_path / "out")
    assert info.class_names == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    record = read_split(tmp_path / "out", "val")[0]
    assert record.boxes == ((1.0, 2.0, 11.0, 9.0), (0.0, 0.0, 4.0, 4.0))
    assert (record.width, record.height) == (20, 10)


def test_wsoleval_missing_metadata_is_refused(tmp_path):
    src = build_wsoleval_cub(tmp_path / "wsolevaluation")
    with pytest.raises(SourceLayoutError, match=r"metadata/ILSVRC not found; expected the official layout"):
        import_dataset("ilsvrc", src, tmp_path / "out")
    (src / "metadata" / "CUB" / "test" / "class_labels.txt").unlink()
    with pytest.raises(SourceLayoutError, match=r"test/class_labels\.txt not found"):
        import_dataset("cub_wsolevaluation", src, tmp_path / "out")


def test_folder_of_classes_split_and_masks(tmp_path):
    src = build_folder(tmp_path / "photos", {"cat": 10, "dog": 20})
    report = import_dataset("folder", src, tmp_path / "out", seed=7)
    # per class (10, 20): test ceil(20 %) = 2, 4; valid ceil(10 %) = 1, 2.
    assert report.counts == {"train": 21, "val": 3, "test": 6}
    info = read_dataset_info(tmp_path / "out")
    assert info.class_names == ["cat", "dog"]
    records = {r.image_id: r for s in info.splits for r in read_split(tmp_path / "out", s)}
    expected = np.zeros((12, 16), dtype=np.uint8)
    expected[2:6, 2:10] = 255
    for image_id in ("cat/img_3.png", "dog/img_4.jpg"):  # a 0/1 mask and a 0/255 mask with a 100 pixel
        mask = np.asarray(Image.open(tmp_path / "out" / "masks" / records[image_id].mask_paths[0]))
        np.testing.assert_array_equal(mask, expected)


def test_folder_without_masks_and_with_a_broken_image(tmp_path):
    src = build_folder(tmp_path / "photos", {"a": 3, "b": 3}, masks=False)
    (src / "b" / "img_1.png").write_bytes(b"\x89PNG broken")
    (src / "notes").mkdir()
    report = import_dataset("folder", src, tmp_path / "out")
    assert [path for path, _ in report.skipped] == [str(src / "b" / "img_1.png")]
    assert sum(report.counts.values()) == 5
    assert read_dataset_info(tmp_path / "out").class_names == ["a", "b"]
    assert any("notes: no image files" in warning for warning in report.warnings)


def test_folder_without_classes_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceLayoutError, match="has no class sub-folder with images"):
        import_dataset("folder", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SourceLayoutError, match="does not exist"):
        import_dataset("folder", tmp_path / "nowhere", tmp_path / "out")
