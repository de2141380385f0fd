"""PH2 dermoscopy database.

Mendonça et al., "PH² - A dermoscopic image database for research and benchmarking", IEEE EMBC 2013.
Official layout (``--src`` is the ``PH2Dataset`` folder)::

    PH2 Dataset images/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp
    PH2 Dataset images/IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp          1-bit lesion mask
    PH2 Dataset images/IMDnnn/IMDnnn_roi/...                           optional, not used
    PH2_dataset.txt

``.png`` copies of the image and lesion files are accepted too. ``PH2_dataset.txt`` is latin-1 text with CRLF
line ends: a header naming the columns (``Name``, ``Clinical Diagnosis``, ...), one row per image, then legend
lines, which are skipped. Columns are separated by tabs or, as in the file distributed with the database, by
``||``. Labels: Clinical Diagnosis 0 common nevus, 1 atypical nevus, 2 melanoma. PH2 has no official split:
a seeded stratified 70 / 10 / 20 % train / val / test split is drawn (per class, ``ceil`` of each held-out
fraction).
"""

from __future__ import annotations

import re
from pathlib import Path

from wsol.data.importers.base import (
    TEST,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
    read_nonzero,
)
from wsol.data.mask_boxes import MaskBoxOptions
from wsol.data.splits import stratified_split

CLASS_NAMES = ["common_nevus", "atypical_nevus", "melanoma"]
IMAGES_DIR = "PH2 Dataset images"
LABELS_FILE = "PH2_dataset.txt"
NAME_PATTERN = re.compile(r"IMD\d+")
HELD_OUT = ((TEST, 0.2), (VALID, 0.1))


def _cells(line: str, delimiter: str) -> list[str]:
    return [cell.strip() for cell in line.split(delimiter)]


def read_diagnoses(path: Path) -> dict[str, int]:
    """``{IMDnnn: clinical diagnosis}`` from ``PH2_dataset.txt`` (tab- or ``||``-separated, latin-1)."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    header_at = next((i for i, line in enumerate(lines) if "clinical diagnosis" in line.lower()), None)
    if header_at is None:
        raise SourceLayoutError(f"ph2: {path}: no header line with a 'Clinical Diagnosis' column")
    delimiter = "||" if "||" in lines[header_at] else "\t"
    header = [cell.lower() for cell in _cells(lines[header_at], delimiter)]
    if "name" not in header:
        raise SourceLayoutError(f"ph2: {path}:{header_at + 1}: no 'Name' column in the header")
    name_at, label_at = header.index("name"), header.index("clinical diagnosis")
    diagnoses: dict[str, int] = {}
    for lineno, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        cells = _cells(line, delimiter)
        if len(cells) <= name_at or not NAME_PATTERN.fullmatch(cells[name_at]):
            continue  # blank and legend lines
        name = cells[name_at]
        value = cells[label_at] if len(cells) > label_at else ""
        if value not in ("0", "1", "2"):
            raise SourceLayoutError(
                f"ph2: {path}:{lineno}: Clinical Diagnosis of {name} is {value!r}, expected 0, 1 or 2"
            )
        if name in diagnoses:
            raise SourceLayoutError(f"ph2: {path}:{lineno}: duplicate image {name}")
        diagnoses[name] = int(value)
    if not diagnoses:
        raise SourceLayoutError(f"ph2: {path}: no image rows (IMDnnn) after the header")
    return diagnoses


def _find(folder: Path, stem: str) -> Path:
    """``folder/stem.bmp``, or its ``.png`` copy when only that exists."""
    for suffix in (".bmp", ".png", ".BMP", ".PNG"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return folder / f"{stem}.bmp"


class PH2Importer(Importer):
    """PH2's official folder: diagnosis labels and lesion masks."""

    name = "ph2"
    mask_boxes = MaskBoxOptions()
    citation = (
        "T. Mendonça, P. M. Ferreira, J. S. Marques, A. R. S. Marcal, J. Rozeira, PH² - A dermoscopic image "
        "database for research and benchmarking, IEEE EMBC 2013."
    )

    def scan(self) -> SourceScan:
        image_root = self.require(IMAGES_DIR, kind="folder")
        diagnoses = read_diagnoses(self.require(LABELS_FILE))
        by_class: dict[int, list[str]] = {}
        for name, label in diagnoses.items():
            by_class.setdefault(label, []).append(name)
        assignment = stratified_split(by_class, HELD_OUT, seed=self.split_seed)
        listed = set(diagnoses)
        warnings = [
            f"{folder}: not listed in {LABELS_FILE}; ignored"
            for folder in sorted(image_root.iterdir())
            if folder.is_dir() and NAME_PATTERN.fullmatch(folder.name) and folder.name not in listed
        ]
        images = []
        for name in sorted(diagnoses):
            image_path = _find(image_root / name / f"{name}_Dermoscopic_Image", name)
            mask_path = _find(image_root / name / f"{name}_lesion", f"{name}_lesion")
            images.append(
                SourceImage(
                    path=image_path,
                    image_id=image_path.relative_to(image_root).as_posix(),
                    label=diagnoses[name],
                    split=assignment[name],
                    masks=(MaskSource(mask_path, read_nonzero, f"{name}_lesion.png"),),
                )
            )
        return SourceScan(
            image_root=image_root,
            class_names=list(CLASS_NAMES),
            images=images,
            extra={
                "split_policy": f"seeded stratified 70/10/20 train/val/test, seed {self.split_seed}",
                "citation": self.citation,
            },
            warnings=warnings,
        )
