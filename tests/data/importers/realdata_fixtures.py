"""Tiny BUSI, Oxford-IIIT Pet and Tiny ImageNet-200 folders in their official layouts, quirks included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth(seed: int, width: int = 40, height: int = 32) -> np.ndarray:
    """A smooth random RGB image (a 4 x 4 grid upsampled): crops of it keep their perceptual hash."""
    grid = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC))


def binary(mask: np.ndarray) -> Image.Image:
    return Image.fromarray((mask > 0).astype(np.uint8) * 255).convert("1")


def busi_lesion(width: int = 40, height: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Two mask files of one lesion: ``_mask`` rows 4-9 / cols 5-12, ``_mask_1`` rows 20-25 / cols 28-35."""
    first, second = np.zeros((height, width), bool), np.zeros((height, width), bool)
    first[4:10, 5:13] = True
    second[20:26, 28:36] = True
    return first, second


def build_busi(root: Path) -> Path:
    """``Dataset_BUSI_with_GT`` with 8 benign, 4 malignant, 4 normal images and the release's quirks.

    * ``benign (1)``: two mask files (``_mask`` + ``_mask_1``): the lesion is their union;
    * ``benign (2)`` is byte-identical to ``malignant (1)`` (filed under both classes);
    * ``benign (3)`` is ``benign (4)`` rescaled to 48 x 38 (a near-duplicate of another size);
    * ``normal (k)_mask.png`` are all black; a ``.DS_Store`` lies in ``benign``.
    """
    src = root / "Dataset_BUSI_with_GT"
    counts = {"benign": 8, "malignant": 4, "normal": 4}
    seed = 0
    for name, count in counts.items():
        (src / name).mkdir(parents=True)
        for index in range(1, count + 1):
            seed += 1
            stem = src / name / f"{name} ({index})"
            Image.fromarray(smooth(seed)).save(f"{stem}.png")
            mask = np.zeros((32, 40), bool)
            if name != "normal":
                mask[8 + index % 3 : 16, 10 : 20 + index] = True
            binary(mask).save(f"{stem}_mask.png")
    first, second = busi_lesion()
    binary(first).save(src / "benign" / "benign (1)_mask.png")
    binary(second).save(src / "benign" / "benign (1)_mask_1.png")
    (src / "benign" / "benign (2).png").write_bytes((src / "malignant" / "malignant (1).png").read_bytes())
    Image.fromarray(smooth(4)).resize((48, 38), Image.Resampling.BILINEAR).save(
        src / "benign" / "benign (3).png"
    )
    binary(np.ones((38, 48), bool)).save(src / "benign" / "benign (3)_mask.png")
    (src / "benign" / ".DS_Store").write_bytes(b"\0\1")
    return src


def pet_trimap(width: int = 24, height: int = 20) -> np.ndarray:
    """Background 2; a pet (1) in rows 4-13 / cols 6-17 with a boundary ring (3); a 1-pixel pet speck."""
    trimap = np.full((height, width), 2, np.uint8)
    trimap[3:15, 5:19] = 3
    trimap[4:14, 6:18] = 1
    trimap[18, 1] = 1
    return trimap


PETS = {
    # name: (class id, species, breed id, split)
    "Abyssinian_1": (1, 1, 1, "trainval"),
    "Abyssinian_2": (1, 1, 1, "trainval"),
    "Abyssinian_3": (1, 1, 1, "test"),
    "american_bulldog_1": (2, 2, 1, "trainval"),
    "american_bulldog_2": (2, 2, 1, "trainval"),
    "american_bulldog_3": (2, 2, 1, "test"),
}


def build_pets(root: Path, classes: int = 37) -> Path:
    """Official Oxford-IIIT Pet folders; the breeds 3..37 get one trainval image each (``breed_<k>_1``).

    Quirks: ``Abyssinian_2.jpg`` holds PNG data, ``american_bulldog_1.jpg`` is a CMYK JPEG, ``images`` has
    a stray ``.mat`` file and an image not in any list, ``trimaps`` has ``._`` AppleDouble files, and only
    some trainval images have a head XML.
    """
    rows = dict(PETS)
    for class_id in range(3, classes + 1):
        rows[f"breed_{class_id}_1"] = (class_id, 1 + class_id % 2, class_id, "trainval")
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    (root / "annotations" / "xmls").mkdir(parents=True)
    for index, name in enumerate(rows):
        image = Image.fromarray(smooth(index, 24, 20))
        if name == "Abyssinian_2":
            image.save(root / "images" / f"{name}.jpg", format="PNG")
        elif name == "american_bulldog_1":
            image.convert("CMYK").save(root / "images" / f"{name}.jpg", format="JPEG")
        else:
            image.save(root / "images" / f"{name}.jpg", format="JPEG")
        Image.fromarray(pet_trimap()).save(root / "annotations" / "trimaps" / f"{name}.png")
        (root / "annotations" / "trimaps" / f"._{name}.png").write_bytes(b"\0\5\x16\7")
    (root / "images" / "Abyssinian_100.mat").write_bytes(b"MATLAB")
    Image.fromarray(smooth(99, 24, 20)).save(root / "images" / "Abyssinian_99.jpg")
    (root / "annotations" / "xmls" / "Abyssinian_1.xml").write_text(
        "<annotation><filename>Abyssinian_1.jpg</filename><size><width>24</width><height>20</height>"
        "<depth>3</depth></size><object><name>cat</name><pose>Frontal</pose><truncated>0</truncated>"
        "<occluded>0</occluded><bndbox><xmin>7</xmin><ymin>5</ymin><xmax>12</xmax><ymax>9</ymax></bndbox>"
        "<difficult>0</difficult></object></annotation>\n"
    )
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
    line = "{} {} {} {}\n"
    (root / "annotations" / "list.txt").write_text(
        header + "".join(line.format(name, *row[:3]) for name, row in rows.items())
    )
    for split in ("trainval", "test"):
        (root / "annotations" / f"{split}.txt").write_text(
            "".join(line.format(name, *row[:3]) for name, row in rows.items() if row[3] == split)
        )
    return root


def build_tiny_imagenet(root: Path) -> Path:
    """``tiny-imagenet-200``: 2 classes x 10 train images, 3 val images, a test folder, greyscale JPEGs."""
    src = root / "tiny-imagenet-200"
    wnids = ["n01443537", "n09999999"]
    (src / "val" / "images").mkdir(parents=True)
    (src / "test" / "images").mkdir(parents=True)
    (src / "wnids.txt").write_text("".join(f"{wnid}\n" for wnid in wnids))
    (src / "words.txt").write_text(
        "n00001740\tentity\nn01443537\tgoldfish, Carassius auratus\nn09999999\tsomething, other\n"
    )
    for label, wnid in enumerate(wnids):
        (src / "train" / wnid / "images").mkdir(parents=True)
        lines = []
        for index in range(10):
            image = Image.fromarray(smooth(label * 100 + index, 64, 64))
            (image.convert("L") if index == 0 else image).save(
                src / "train" / wnid / "images" / f"{wnid}_{index}.JPEG"
            )
            lines.append(f"{wnid}_{index}.JPEG\t{index}\t10\t63\t{40 + index}\n")
        (src / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(lines))
    val = []
    for index in range(3):
        Image.fromarray(smooth(500 + index, 64, 64)).save(src / "val" / "images" / f"val_{index}.JPEG")
        val.append(f"val_{index}.JPEG\t{wnids[index % 2]}\t0\t0\t{30 + index}\t20\n")
    (src / "val" / "val_annotations.txt").write_text("".join(val))
    Image.fromarray(smooth(900, 64, 64)).save(src / "test" / "images" / "test_0.JPEG")
    return src
