"""Builders of tiny datasets in each dataset's *official* layout (names, formats, bit depths, CSV quirks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def rgb(seed: int, width: int = 16, height: int = 12) -> Image.Image:
    """A deterministic random RGB image."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), mode="RGB")


# ------------------------------------------------------------------------------------------------- GlaS
GLAS_HEADER = "name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"


def glas_anno(width: int = 16, height: int = 12) -> np.ndarray:
    """Two glands: instance 1 in rows 1-3 / cols 2-5, instance 2 in rows 6-9 / cols 8-13."""
    anno = np.zeros((height, width), dtype=np.uint8)
    anno[1:4, 2:6] = 1
    anno[6:10, 8:14] = 2
    return anno


def build_glas(root: Path, grades: dict[str, str]) -> Path:
    """Flat Warwick-QU folder: ``NAME.bmp``, 8-bit palette ``NAME_anno.bmp`` and a CRLF ``Grade.csv``."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [GLAS_HEADER]
    for index, (name, grade) in enumerate(grades.items()):
        rgb(index).save(root / f"{name}.bmp")
        anno = Image.fromarray(glas_anno(), mode="P")
        anno.putpalette([value for level in range(256) for value in (level * 40 % 256,) * 3])
        anno.save(root / f"{name}_anno.bmp")
        lines.append(
            f"{name},{index % 7 + 1}, {grade}, {'healthy' if grade == 'benign' else 'adenocarcinoma'}"
        )
    (root / "Grade.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return root


# -------------------------------------------------------------------------------------------------- CUB
def cub_segmentation(width: int = 16, height: int = 12) -> np.ndarray:
    """Annotator agreement: 255 in rows 2-5 / cols 3-8, 128 (a majority) at (8, 10), 127 (not) at (9, 10)."""
    seg = np.zeros((height, width), dtype=np.uint8)
    seg[2:6, 3:9] = 255
    seg[8, 10] = 128
    seg[9, 10] = 127
    return seg


def build_cub(
    root: Path, classes: list[tuple[int, str]], images_per_class: dict[str, list[tuple[str, bool]]]
) -> Path:
    """``root/CUB_200_2011`` (space-separated txt files, float boxes) and ``root/segmentations``.

    ``images_per_class[class name]`` = [(file stem, is_train)]; every box is ``1.5 2.0 10.0 6.5``.
    """
    cub = root / "CUB_200_2011"
    (cub / "images").mkdir(parents=True, exist_ok=True)
    images, labels, split, boxes = [], [], [], []
    image_id = 0
    for class_id, class_name in classes:
        for stem, is_train in images_per_class.get(class_name, []):
            image_id += 1
            relative = f"{class_name}/{stem}.jpg"
            (cub / "images" / class_name).mkdir(exist_ok=True)
            rgb(image_id).save(cub / "images" / relative, quality=95)
            (root / "segmentations" / class_name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(cub_segmentation(), mode="L").save(
                root / "segmentations" / class_name / f"{stem}.png"
            )
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {int(is_train)}")
            boxes.append(f"{image_id} 1.5 2.0 10.0 6.5")
    classes_lines = [f"{class_id} {name}" for class_id, name in classes]
    for name, lines in (
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("bounding_boxes.txt", boxes),
        ("classes.txt", classes_lines),
    ):
        (cub / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return root


# -------------------------------------------------------------------------------------- Oxford Flowers
def build_oxford(root: Path, labels: list[int], setid: dict[str, list[int]]) -> Path:
    """``jpg/``, ``segmim/`` (blue background, flower = rows 16-31 x cols 16-31) and real .mat files."""
    (root / "jpg").mkdir(parents=True, exist_ok=True)
    (root / "segmim").mkdir(parents=True, exist_ok=True)
    for number in range(1, len(labels) + 1):
        rgb(number, 48, 40).save(root / "jpg" / f"image_{number:05d}.jpg", quality=90)
        seg = np.zeros((40, 48, 3), dtype=np.uint8)
        seg[..., 2] = 254
        seg[16:32, 16:32] = (200, 180, 40)
        Image.fromarray(seg, mode="RGB").save(root / "segmim" / f"segmim_{number:05d}.jpg", quality=75)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.asarray([labels], dtype=np.uint8)})
    scipy.io.savemat(
        root / "setid.mat", {key: np.asarray([values], dtype=np.uint16) for key, values in setid.items()}
    )
    return root


# ------------------------------------------------------------------------------------------------- PH2
PH2_LEGEND = [
    "",
    "Legends:",
    "Clinical Diagnosis: 0 - Common Nevus; 1 - Atypical Nevus; 2 - Melanoma",
    "Asymmetry: 0 - Fully Symmetric; 1 - Symetric in 1 axe; 2 - Fully Asymmetric",
    "Colors: 1 - White; 2 - Red; 3 - Light-Brown; 4 - Dark-Brown; 5 - Blue-Gray; 6 - Black",
    "© Hospital Pedro Hispano, Matosinhos",
]


def ph2_lesion(width: int = 16, height: int = 12) -> np.ndarray:
    lesion = np.zeros((height, width), dtype=bool)
    lesion[3:9, 4:12] = True
    return lesion


def build_ph2(root: Path, diagnoses: dict[str, int], *, png: bool = False, bars: bool = False) -> Path:
    """``PH2 Dataset images/IMDnnn/...`` with 1-bit lesion BMPs and a latin-1 CRLF ``PH2_dataset.txt``.

    ``bars`` writes the table with ``||`` separators (as distributed) instead of tabs; ``png`` writes
    .png copies.
    """
    suffix = ".png" if png else ".bmp"
    columns = ["Name", "Histological Diagnosis", "Clinical Diagnosis", "Asymmetry", "Colors"]
    if bars:
        lines = ["|| " + " || ".join(columns) + " ||"]
    else:
        lines = ["\t".join(columns)]
    for index, (name, diagnosis) in enumerate(diagnoses.items()):
        folder = root / "PH2 Dataset images" / name
        (folder / f"{name}_Dermoscopic_Image").mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_lesion").mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_roi").mkdir(parents=True, exist_ok=True)
        rgb(index).save(folder / f"{name}_Dermoscopic_Image" / f"{name}{suffix}")
        Image.fromarray(ph2_lesion()).convert("1").save(folder / f"{name}_lesion" / f"{name}_lesion{suffix}")
        cells = [name, "Melanoma" if diagnosis == 2 else "", str(diagnosis), "0", "3 4"]
        lines.append("|| " + " || ".join(cells) + " ||" if bars else "\t".join(cells))
    lines += PH2_LEGEND
    (root / "PH2_dataset.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return root


# ------------------------------------------------------------------------------------- wsolevaluation
def build_openimages(root: Path) -> Path:
    """``metadata/OpenImages/{train,test}`` and ``dataset/OpenImages``: test image ``a`` has two instance
    masks (the ignore PNG on its first line only), ``b`` one; masks are 0/255 PNGs at half resolution."""
    data = root / "dataset" / "OpenImages"
    meta = root / "metadata" / "OpenImages"
    for split, names in (("train", ["t1", "t2"]), ("test", ["a", "b"])):
        (meta / split).mkdir(parents=True, exist_ok=True)
        ids = [f"{split}/01226z/{name}.jpg" for name in names]
        for index, image_id in enumerate(ids):
            (data / image_id).parent.mkdir(parents=True, exist_ok=True)
            rgb(index, 16, 12).save(data / image_id, quality=95)
        (meta / split / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        (meta / split / "class_labels.txt").write_text("".join(f"{i},{k % 2}\n" for k, i in enumerate(ids)))
    folder = data / "test" / "01226z"

    def mask(rows: slice, cols: slice) -> Image.Image:
        array = np.zeros((6, 8), dtype=np.uint8)
        array[rows, cols] = 255
        return Image.fromarray(array, mode="L")

    mask(slice(0, 2), slice(0, 2)).save(folder / "a_m01226z_1.png")
    mask(slice(3, 5), slice(4, 8)).save(folder / "a_m01226z_2.png")
    mask(slice(0, 6), slice(6, 8)).save(folder / "a_ignore.png")
    mask(slice(1, 4), slice(1, 4)).save(folder / "b_m01226z_1.png")
    mask(slice(0, 0), slice(0, 0)).save(folder / "b_ignore.png")
    (meta / "test" / "localization.txt").write_text(
        "test/01226z/a.jpg,test/01226z/a_m01226z_1.png,test/01226z/a_ignore.png\n"
        "test/01226z/a.jpg,test/01226z/a_m01226z_2.png,\n"
        "test/01226z/b.jpg,test/01226z/b_m01226z_1.png,test/01226z/b_ignore.png\n",
        encoding="utf-8",
    )
    return root


def build_wsoleval_cub(root: Path) -> Path:
    """``metadata/CUB/{train,val,test}`` with image sizes and boxes, images under ``dataset/CUB``."""
    for split, stems in (("train", ["x1", "x2"]), ("val", ["v1"]), ("test", ["y1"])):
        meta = root / "metadata" / "CUB" / split
        meta.mkdir(parents=True, exist_ok=True)
        ids, labels, sizes, boxes = [], [], [], []
        for k, stem in enumerate(stems):
            folder = ("001.Black_footed_Albatross", "002.Laysan_Albatross")[k % 2]
            image_id = f"{folder}/{stem}.jpg"
            path = root / "dataset" / "CUB" / image_id
            path.parent.mkdir(parents=True, exist_ok=True)
            rgb(k, 20, 10).save(path, quality=95)
            ids.append(image_id)
            labels.append(f"{image_id},{k % 2}")
            sizes.append(f"{image_id},20,10")
            boxes += [f"{image_id},1,2,11,9", f"{image_id},0,0,4,4"]
        for name, lines in (
            ("image_ids.txt", ids),
            ("class_labels.txt", labels),
            ("image_sizes.txt", sizes),
            ("localization.txt", boxes),
        ):
            (meta / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return root


# ----------------------------------------------------------------------------------- folder of classes
def build_folder(root: Path, counts: dict[str, int], *, masks: bool = True) -> Path:
    """``root/<class>/img_k.jpg|png`` and, with ``masks``, ``root_masks/<class>/img_k.png`` (0/1 for the first
    class, 0/255 for the others)."""
    for class_index, (class_name, count) in enumerate(counts.items()):
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            suffix = ".png" if k % 2 else ".jpg"
            rgb(class_index * 100 + k).save(root / class_name / f"img_{k}{suffix}")
            if masks:
                mask_dir = root.parent / f"{root.name}_masks" / class_name
                mask_dir.mkdir(parents=True, exist_ok=True)
                array = np.zeros((12, 16), dtype=np.uint8)
                array[2:6, 2:10] = 1 if class_index == 0 else 255
                array[8, 8] = 0 if class_index == 0 else 100  # below 128: background
                Image.fromarray(array, mode="L").save(mask_dir / f"img_{k}.png")
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> content), to compare two imports byte for byte."""
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }
