"""Oxford Flowers 102 (real .mat files, blue-background segmim JPEGs) and PH2 (1-bit BMPs, latin-1 table)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from importer_fixtures import build_oxford, build_ph2, ph2_lesion
from PIL import Image

from wsol.data.format import read_dataset_info, read_split
from wsol.data.importers import SourceLayoutError, import_dataset
from wsol.data.importers.oxford_flowers import read_segmim

LABELS = [3, 1, 3, 2, 1, 2, 3]
SETID = {"trnid": [1, 2], "valid": [3, 4], "tstid": [5, 6, 7]}


def test_oxford_official_split_zero_based_labels_and_blue_background(tmp_path):
    src = build_oxford(tmp_path / "src", LABELS, SETID)
    report = import_dataset("oxford_flowers", src, tmp_path / "out")
    assert report.counts == {"train": 2, "val": 2, "test": 3}
    info = read_dataset_info(tmp_path / "out")
    assert info.num_classes == 3 and info.class_names == ["1", "2", "3"]
    test = {r.image_id: r for r in read_split(tmp_path / "out", "test")}
    assert [test[f"image_0000{n}.jpg"].label for n in (5, 6, 7)] == [0, 1, 2]
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "image_00005.png")) > 0
    square, ring = np.zeros((40, 48), dtype=bool), np.zeros((40, 48), dtype=bool)
    square[16:32, 16:32] = True
    ring[15:33, 15:33] = True
    # The flower is foreground, JPEG noise on the flat blue is not; chroma subsampling may blur one pixel.
    assert mask[square].all() and not mask[~ring].any()


def test_segmim_tolerance_hand_computed(tmp_path):
    pixels = np.array([[[0, 0, 254], [40, 30, 220], [61, 0, 254], [0, 0, 190]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(tmp_path / "s.png")
    np.testing.assert_array_equal(read_segmim(tmp_path / "s.png"), [[0, 0, 1, 1]])


def test_oxford_missing_setid_and_bad_key(tmp_path):
    src = build_oxford(tmp_path / "src", LABELS, SETID)
    scipy.io.savemat(src / "setid.mat", {"trnid": np.array([[1, 2]]), "tstid": np.array([[5]])})
    with pytest.raises(SourceLayoutError, match=r"setid\.mat has no variable 'valid'"):
        import_dataset("oxford_flowers", src, tmp_path / "out")
    (src / "setid.mat").unlink()
    with pytest.raises(SourceLayoutError, match=r"setid\.mat not found"):
        import_dataset("oxford_flowers", src, tmp_path / "out")


def test_oxford_overlapping_splits_are_refused(tmp_path):
    src = build_oxford(tmp_path / "src", LABELS, {"trnid": [1, 2], "valid": [2, 3], "tstid": [4]})
    with pytest.raises(SourceLayoutError, match="image 2 is in both train and val"):
        import_dataset("oxford_flowers", src, tmp_path / "out")


PH2 = {f"IMD{n:03d}": (0 if n < 30 else 1 if n < 60 else 2) for n in range(10, 80)}  # 20 / 30 / 20


@pytest.mark.parametrize("bars", [False, True], ids=["tabs", "double-bars"])
def test_ph2_stratified_split_and_1bit_masks(tmp_path, bars):
    src = build_ph2(tmp_path / "PH2Dataset", PH2, bars=bars)
    report = import_dataset("ph2", src, tmp_path / "out")
    # per class (20, 30, 20): test ceil(20 %) = 4, 6, 4; valid ceil(10 %) = 2, 3, 2.
    assert report.counts == {"train": 49, "val": 7, "test": 14}
    for split, expected in (("val", [2, 3, 2]), ("test", [4, 6, 4])):
        labels = [r.label for r in read_split(tmp_path / "out", split)]
        assert [labels.count(k) for k in range(3)] == expected
    info = read_dataset_info(tmp_path / "out")
    assert info.class_names == ["common_nevus", "atypical_nevus", "melanoma"]
    records = {r.image_id: r for s in info.splits for r in read_split(tmp_path / "out", s)}
    record = records["IMD075/IMD075_Dermoscopic_Image/IMD075.bmp"]
    assert record.label == 2
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "IMD075_lesion.png"))
    np.testing.assert_array_equal(mask > 0, ph2_lesion())


def test_ph2_png_copies_are_accepted(tmp_path):
    src = build_ph2(tmp_path / "PH2Dataset", {"IMD002": 0, "IMD003": 1, "IMD004": 2}, png=True)
    report = import_dataset("ph2", src, tmp_path / "out", seed=5)
    assert report.counts == {"train": 3} and report.skipped == []
    assert read_split(tmp_path / "out", "train")[0].image_id == "IMD002/IMD002_Dermoscopic_Image/IMD002.png"


def test_ph2_malformed_sources(tmp_path):
    src = build_ph2(tmp_path / "PH2Dataset", {"IMD002": 0, "IMD003": 1})
    text = (src / "PH2_dataset.txt").read_bytes().replace(b"IMD003\t\t1", b"IMD003\t\tX")
    (src / "PH2_dataset.txt").write_bytes(text)
    with pytest.raises(SourceLayoutError, match=r"PH2_dataset\.txt:3: Clinical Diagnosis of IMD003 is 'X'"):
        import_dataset("ph2", src, tmp_path / "out")
    (src / "PH2_dataset.txt").unlink()
    with pytest.raises(SourceLayoutError, match=r"PH2_dataset\.txt not found"):
        import_dataset("ph2", src, tmp_path / "out")
