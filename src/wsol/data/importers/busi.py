"""BUSI, breast ultrasound images with expert lesion masks.

Al-Dhabyani, Gomaa, Khaled, Fahmy, "Dataset of breast ultrasound images", Data in Brief 28:104863, 2020
(CC BY 4.0). Official layout (``--src`` is the ``Dataset_BUSI_with_GT`` folder)::

    benign/benign (1).png  benign (1)_mask.png  [benign (1)_mask_1.png ...]
    malignant/malignant (1).png  malignant (1)_mask.png ...
    normal/normal (1).png  normal (1)_mask.png                  all-black: no lesion

Labels: benign 0, malignant 1, normal 2. A lesion with several mask files (``_mask``, ``_mask_1``, ...) gets
their union. ``normal`` is a *no-object* class (``no_object_classes`` of ``dataset.json``): its images are
classified but carry no mask or box and are left out of localization metrics; a normal mask that is not
empty is reported as a warning. Boxes are derived from the masks (``wsol.data.mask_boxes``).

BUSI has no official split: a seeded stratified 70 / 10 / 20 % train / val / test split is drawn over groups
of exact and near-duplicate images (``wsol.data.duplicates``; the release files one image under two classes
and re-crops some scans), so that no scan is in two splits.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from wsol.data.duplicates import duplicate_groups
from wsol.data.importers.base import (
    TEST,
    VALID,
    Importer,
    MaskReader,
    MaskSource,
    SourceImage,
    SourceScan,
    read_nonzero,
)
from wsol.data.mask_boxes import MaskBoxOptions
from wsol.data.splits import grouped_stratified_split

CLASS_NAMES = ["benign", "malignant", "normal"]
NO_OBJECT = "normal"
HELD_OUT = ((TEST, 0.2), (VALID, 0.1))
MASK_PATTERN = re.compile(r"(?P<stem>.+)_mask(_(?P<index>\d+))?")


def union_reader(paths: list[Path]) -> MaskReader:
    """Reader of the union (``> 0``) of several mask files (the first one is the :class:`MaskSource` path)."""

    def read(_: Path) -> np.ndarray:
        return np.maximum.reduce([read_nonzero(path) for path in paths])

    return read


def _mask_name(image_id: str) -> str:
    """Output mask of an image: ``benign/benign (1).png`` -> ``benign/benign (1)_mask.png``."""
    return f"{Path(image_id).with_suffix('')}_mask.png"


def _mask_order(path: Path) -> int:
    match = MASK_PATTERN.fullmatch(path.stem)
    return int(match["index"]) if match and match["index"] else 0


class BUSIImporter(Importer):
    """BUSI's official folder: benign / malignant / normal, lesion masks (see the module docstring)."""

    name = "busi"
    citation = (
        "W. Al-Dhabyani, M. Gomaa, H. Khaled, A. Fahmy, Dataset of breast ultrasound images, "
        "Data in Brief 28:104863, 2020."
    )
    mask_boxes = MaskBoxOptions()

    def _class_files(self, label: int) -> tuple[list[Path], dict[str, list[Path]]]:
        """Images of one class folder and, per image stem, its mask files (``_mask`` first)."""
        folder = self.require(CLASS_NAMES[label], kind="folder")
        images, masks = [], {}
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.suffix.lower() != ".png" or not path.is_file():
                continue
            match = MASK_PATTERN.fullmatch(path.stem)
            if match:
                masks.setdefault(match["stem"], []).append(path)
            else:
                images.append(path)
        return images, {stem: sorted(files, key=_mask_order) for stem, files in masks.items()}

    def scan(self) -> SourceScan:
        items: list[tuple[Path, int, list[Path]]] = []
        warnings: list[str] = []
        for label, class_name in enumerate(CLASS_NAMES):
            images, masks = self._class_files(label)
            for path in images:
                files = masks.pop(path.stem, [])
                if not files:
                    warnings.append(f"{path}: no mask file ({path.stem}_mask.png); imported without one")
                if class_name == NO_OBJECT:
                    if any(read_nonzero(file).any() for file in files):
                        warnings.append(f"{path}: a '{NO_OBJECT}' image with a non-empty mask; mask ignored")
                    files = []
                items.append((path, label, files))
            warnings += [f"{files[0]}: mask without an image; ignored" for files in masks.values()]
        ids = [path.relative_to(self.src).as_posix() for path, _, _ in items]
        groups = [[ids[i] for i in group] for group in duplicate_groups([path for path, _, _ in items])]
        labels = {image_id: label for image_id, (_, label, _) in zip(ids, items, strict=True)}
        assignment = grouped_stratified_split(labels, groups, HELD_OUT, seed=self.split_seed)
        warnings += [
            f"images filed under several classes (kept, in one split): {group}"
            for group in groups
            if len({labels[image_id] for image_id in group}) > 1
        ]
        images = [
            SourceImage(
                path=path,
                image_id=image_id,
                label=label,
                split=assignment[image_id],
                masks=(MaskSource(files[0], union_reader(files), _mask_name(image_id)),) if files else (),
            )
            for image_id, (path, label, files) in zip(ids, items, strict=True)
        ]
        return SourceScan(
            image_root=self.src,
            class_names=list(CLASS_NAMES),
            images=images,
            extra={
                "split_policy": "seeded stratified 70/10/20 train/val/test over near-duplicate groups, "
                f"seed {self.split_seed}",
                "duplicate_groups": groups,
                "citation": self.citation,
            },
            warnings=warnings,
            no_object_classes=[CLASS_NAMES.index(NO_OBJECT)],
        )
