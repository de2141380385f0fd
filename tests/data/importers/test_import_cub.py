"""CUB and CUB5 importers on a CUB_200_2011 fixture (space-separated txt, float boxes, segmentations)."""

from __future__ import annotations

import numpy as np
import pytest
from importer_fixtures import build_cub, cub_segmentation
from PIL import Image

from wsol.data.format import read_dataset_info, read_split
from wsol.data.importers import SourceLayoutError, import_dataset
from wsol.data.importers.cub import CUB5_CLASSES, CUB5_PAPER_VALID

CLASSES = [(1, "001.Black_footed_Albatross"), (2, "002.Laysan_Albatross")]
IMAGES = {
    "001.Black_footed_Albatross": [(f"Black_Footed_Albatross_{k:04d}", k < 6) for k in range(8)],
    "002.Laysan_Albatross": [(f"Laysan_Albatross_{k:04d}", k < 3) for k in range(4)],
}


@pytest.fixture(scope="module")
def cub_src(tmp_path_factory: pytest.TempPathFactory):
    return build_cub(tmp_path_factory.mktemp("cub"), CLASSES, IMAGES)


def test_official_test_split_seeded_valid_boxes_and_masks(cub_src, tmp_path):
    report = import_dataset("cub", cub_src, tmp_path / "out")
    # train: 6 + 3 images; ceil(20 %) per class = 2 + 1 go to valid.
    assert report.counts == {"train": 6, "val": 3, "test": 3}
    info = read_dataset_info(tmp_path / "out")
    assert info.class_names == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    assert info.image_root == str(cub_src / "CUB_200_2011" / "images")
    test = {r.image_id: r for r in read_split(tmp_path / "out", "test")}
    record = test["001.Black_footed_Albatross/Black_Footed_Albatross_0007.jpg"]
    assert record.label == 0
    assert record.boxes == ((1.5, 2.0, 11.5, 8.5),)  # x, y, w, h = 1.5 2.0 10.0 6.5
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / record.mask_paths[0]))
    np.testing.assert_array_equal(mask, np.where(cub_segmentation() > 127.5, 255, 0))
    assert mask[8, 10] == 255 and mask[9, 10] == 0  # 128 is a majority of annotators, 127 is not


def test_src_may_be_the_cub_folder_itself_and_other_seed_moves_valid(cub_src, tmp_path):
    import_dataset("cub", cub_src / "CUB_200_2011", tmp_path / "a", seed=0)
    import_dataset("cub", cub_src, tmp_path / "b", seed=1)
    import_dataset("cub", cub_src, tmp_path / "c", seed=0)
    ids = {key: {r.image_id for r in read_split(tmp_path / key, "val")} for key in "abc"}
    assert ids["a"] == ids["c"]
    assert len(ids["b"]) == 3 and ids["b"] != ids["a"]


def test_missing_bounding_boxes_is_refused(cub_src, tmp_path):
    src = build_cub(tmp_path / "src", CLASSES[:1], {CLASSES[0][1]: [("a", True)]})
    (src / "CUB_200_2011" / "bounding_boxes.txt").unlink()
    with pytest.raises(SourceLayoutError, match=r"bounding_boxes\.txt not found"):
        import_dataset("cub", src, tmp_path / "out")


def test_malformed_line_is_named(tmp_path):
    src = build_cub(tmp_path / "src", CLASSES[:1], {CLASSES[0][1]: [("a", True), ("b", False)]})
    (src / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 1.0 2.0 3.0\n2 1 1 2 2\n")
    with pytest.raises(SourceLayoutError, match=r"bounding_boxes\.txt:1: expected 5 space-separated fields"):
        import_dataset("cub", src, tmp_path / "out")


def cub5_fixture(root):
    """The 5 CUB5 classes among 3 other classes; each CUB5 class has its 6 paper validation images, 2 more
    training images and 3 test images."""
    classes = [(19, CUB5_CLASSES[0]), (20, "020.Yellow_breasted_Chat"), (99, CUB5_CLASSES[3])]
    classes += [
        (108, CUB5_CLASSES[2]),
        (171, CUB5_CLASSES[1]),
        (178, CUB5_CLASSES[4]),
        (200, "200.Common_Yellowthroat"),
    ]
    images: dict[str, list[tuple[str, bool]]] = {}
    for relative in sorted(CUB5_PAPER_VALID):
        folder, name = relative.split("/")
        images.setdefault(folder, []).append((name[:-4], True))
    for folder in CUB5_CLASSES:
        images[folder] += [(f"extra_{k}", k < 2) for k in range(5)]
    images["020.Yellow_breasted_Chat"] = [("chat", True)]
    images["200.Common_Yellowthroat"] = [("yellow", False)]
    return build_cub(root, classes, images)


def test_cub5_paper_split_and_encoding(tmp_path):
    src = cub5_fixture(tmp_path / "src")
    report = import_dataset("cub5", src, tmp_path / "out")
    assert report.counts == {"train": 10, "val": 30, "test": 15}
    info = read_dataset_info(tmp_path / "out")
    assert info.class_names == list(CUB5_CLASSES) and info.num_classes == 5
    valid = read_split(tmp_path / "out", "val")
    assert {r.image_id for r in valid} == set(CUB5_PAPER_VALID)
    by_folder = {r.image_id.split("/")[0]: r.label for r in valid}
    assert by_folder == {"019.Gray_Catbird": 0, "171.Myrtle_Warbler": 1, "108.White_necked_Raven": 2,
                         "099.Ovenbird": 3, "178.Swainson_Warbler": 4}  # fmt: skip
    seeded = import_dataset("cub5", src, tmp_path / "seeded", seed=0)
    # 8 training images per class: ceil(1.6) = 2 to valid.
    assert seeded.counts == {"train": 30, "val": 10, "test": 15}


def test_cub5_refuses_a_cub_without_its_classes(cub_src, tmp_path):
    with pytest.raises(SourceLayoutError, match=r"classes\.txt lacks the classes \['019\.Gray_Catbird'"):
        import_dataset("cub5", cub_src, tmp_path / "out")
