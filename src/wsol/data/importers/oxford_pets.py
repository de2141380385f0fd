"""Oxford-IIIT Pet: 37 cat and dog breeds with trimaps (``oxford_pets``; by species: ``oxford_pets_species``).

Parkhi, Vedaldi, Zisserman, Jawahar, "Cats and Dogs", CVPR 2012. Official layout (``--src`` holds the two
extracted archives)::

    images/<Breed_name>_<n>.jpg                 (a few are PNG or CMYK data under .jpg; stray .mat files)
    annotations/list.txt                        '#' comment lines, then "Image CLASS-ID SPECIES BREED-ID"
    annotations/trainval.txt, test.txt          the official split, same columns, no comments
    annotations/trimaps/<image>.png             1 = pet, 2 = background, 3 = boundary (+ "._*" AppleDouble)
    annotations/xmls/<image>.xml                Pascal VOC head box (trainval images only, not all)

Labels: CLASS-ID − 1 (breeds, 0..36; names from the file names) or SPECIES − 1 (cat 0, dog 1). The trimap
gives the mask (pet = 1) and the ignore region (boundary = 3, excluded from pixel metrics); the object boxes
are derived from the pet mask (``wsol.data.mask_boxes``). The XML boxes frame the *head* only: they are kept
as ``head`` extra boxes (``extra_boxes.txt``), VOC's 1-based inclusive corners turned into continuous pixels
(``xmin − 1, ymin − 1, xmax, ymax``), never used by box metrics. Splits: the official test; val = ``ceil(20
%)`` of each class of trainval (seeded, as for CUB), the rest train.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from wsol.data.format import Box
from wsol.data.images import read_mask
from wsol.data.importers.base import (
    TEST,
    TRAIN,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
)
from wsol.data.mask_boxes import MaskBoxOptions
from wsol.data.splits import stratified_split

PET, BOUNDARY = 1, 3
SPECIES = ["cat", "dog"]


def read_pet(path: Path) -> np.ndarray:
    """Pet pixels (trimap value 1) as a 0/1 mask."""
    return (read_mask(path) == PET).astype(np.uint8)


def read_boundary(path: Path) -> np.ndarray:
    """Boundary pixels (trimap value 3): the ignore region."""
    return (read_mask(path) == BOUNDARY).astype(np.uint8)


def read_list(path: Path) -> dict[str, tuple[int, int]]:
    """``{image: (class id, species)}`` (1-based) of ``list.txt``, ``trainval.txt`` or ``test.txt``."""
    rows: dict[str, tuple[int, int]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split()
        if len(cells) != 4 or not all(cell.isdigit() for cell in cells[1:]):
            raise SourceLayoutError(
                f"oxford_pets: {path}:{lineno}: expected 'Image CLASS-ID SPECIES BREED-ID', got {line!r}"
            )
        class_id, species = int(cells[1]), int(cells[2])
        if not 1 <= class_id <= 37 or species not in (1, 2):
            raise SourceLayoutError(f"oxford_pets: {path}:{lineno}: class {class_id} / species {species}")
        rows[cells[0]] = (class_id, species)
    return rows


def read_head_box(path: Path) -> Box | None:
    """The head box of a VOC XML (continuous pixels), or ``None`` when the file has no box."""
    try:
        box = ET.parse(path).getroot().find("object/bndbox")
    except ET.ParseError as err:
        raise SourceLayoutError(f"oxford_pets: {path}: not valid XML ({err})") from err
    if box is None:
        return None
    try:
        values = [float(box.findtext(tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax")]
    except ValueError as err:
        raise SourceLayoutError(f"oxford_pets: {path}: bndbox without 4 numeric corners ({err})") from err
    return (values[0] - 1, values[1] - 1, values[2], values[3])


class OxfordPetsImporter(Importer):
    """Oxford-IIIT Pet by breed (37 classes): official test, trimap masks, head boxes kept apart."""

    name = "oxford_pets"
    citation = "O. M. Parkhi, A. Vedaldi, A. Zisserman, C. V. Jawahar, Cats and Dogs, CVPR 2012."
    mask_boxes = MaskBoxOptions()
    species: bool = False

    def _labels(self, rows: dict[str, tuple[int, int]]) -> tuple[dict[str, int], list[str]]:
        if self.species:
            return {name: species - 1 for name, (_, species) in rows.items()}, list(SPECIES)
        names: dict[int, str] = {}
        for image, (class_id, _) in sorted(rows.items()):
            names.setdefault(class_id, image.rsplit("_", 1)[0])
        missing = sorted(set(range(1, 38)) - set(names))
        class_names = [names.get(class_id, f"class_{class_id}") for class_id in range(1, 38)]
        if missing:
            raise SourceLayoutError(f"oxford_pets: no image of class id(s) {missing} in the split files")
        return {name: class_id - 1 for name, (class_id, _) in rows.items()}, class_names

    def scan(self) -> SourceScan:
        image_root = self.require("images", kind="folder")
        listed = read_list(self.require("annotations/list.txt"))
        trainval = read_list(self.require("annotations/trainval.txt"))
        test = read_list(self.require("annotations/test.txt"))
        overlap = sorted(set(trainval) & set(test))
        if overlap:
            raise SourceLayoutError(f"oxford_pets: {overlap[:3]} are in both trainval.txt and test.txt")
        labels, class_names = self._labels({**trainval, **test})
        by_class: dict[int, list[str]] = {}
        for name in trainval:
            by_class.setdefault(labels[name], []).append(name)
        assignment = {
            **stratified_split(by_class, [(VALID, 0.2)], seed=self.split_seed),
            **dict.fromkeys(test, TEST),
        }
        warnings = [
            f"{name}: in list.txt but in neither split file; ignored"
            for name in sorted(set(listed) - set(labels))
        ]
        trimaps = self.require("annotations/trimaps", kind="folder")
        xmls = self.src / "annotations" / "xmls"
        images = []
        for name in sorted(labels):
            trimap = trimaps / f"{name}.png"
            head = read_head_box(xmls / f"{name}.xml") if (xmls / f"{name}.xml").is_file() else None
            images.append(
                SourceImage(
                    path=image_root / f"{name}.jpg",
                    image_id=f"{name}.jpg",
                    label=labels[name],
                    split=assignment.get(name, TRAIN),
                    masks=(MaskSource(trimap, read_pet, f"{name}.png"),),
                    ignore=MaskSource(trimap, read_boundary, f"{name}_ignore.png"),
                    extra_boxes=(("head", head),) if head is not None else (),
                )
            )
        return SourceScan(
            image_root=image_root,
            class_names=class_names,
            images=images,
            extra={
                "split_policy": "official test; val = ceil(20 %) of each class of trainval, "
                f"seed {self.split_seed}",
                "labels": "species" if self.species else "breeds",
                "citation": self.citation,
            },
            warnings=warnings,
        )


class OxfordPetsSpeciesImporter(OxfordPetsImporter):
    """The same images labelled by species: cat 0, dog 1."""

    name = "oxford_pets_species"
    species = True
