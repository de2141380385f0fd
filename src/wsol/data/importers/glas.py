"""GlaS, the MICCAI 2015 Gland Segmentation challenge (Warwick-QU) dataset.

Sirinukunwattana et al., "Gland segmentation in colon histology images: the GlaS challenge contest", Medical
Image Analysis 35, 2017. Official folder ("Warwick QU Dataset (Released 2016_07_08)"), flat::

    train_N.bmp  train_N_anno.bmp  testA_N.bmp  testA_N_anno.bmp  testB_N.bmp  testB_N_anno.bmp  Grade.csv

``Grade.csv`` has the header ``name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)``, CRLF
line ends and values with a leading space (`` benign``/`` malignant``). Labels come from the ``grade (GlaS)``
column; ``_anno.bmp`` files are instance-labelled (0 background, 1..K glands) and are kept as instance PNGs.

Splits follow the min-max entropy paper (Belharbi et al., arXiv 1907.12934; R1 ``folds/glas/split_0/fold_0``):
test = the 80 ``testA``/``testB`` images; the 85 ``train`` images give 67 train / 18 val. Without ``--seed``
the paper's exact validation list is used; with a seed, ``ceil(20 %)`` of each grade is drawn.
"""

from __future__ import annotations

import csv
from pathlib import Path

from wsol.data.importers.base import (
    TEST,
    TRAIN,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
    read_instances,
)
from wsol.data.mask_boxes import MaskBoxOptions
from wsol.data.splits import stratified_split

CLASS_NAMES = ["benign", "malignant"]
GRADE_FILE = "Grade.csv"
NAME_COLUMN = "name"
GRADE_COLUMN = "grade (glas)"

# The validation images of the paper's split 0 / fold 0 (R1 and R2 ship the same list, seed 0).
PAPER_VALID = (
    "train_24", "train_54", "train_5", "train_36", "train_26", "train_77", "train_74", "train_18", "train_83",
    "train_68", "train_38", "train_72", "train_65", "train_51", "train_12", "train_63", "train_2", "train_52",
)  # fmt: skip


def read_grades(path: Path) -> dict[str, int]:
    """``{name: label}`` from ``Grade.csv`` (any line ends, leading spaces and a UTF-8 BOM tolerated)."""
    text = path.read_bytes().decode("utf-8-sig", errors="strict")
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise SourceLayoutError(
            f"glas: {path} is empty; expected the header {NAME_COLUMN},...,grade (GlaS),..."
        )
    header = [cell.strip().lower() for cell in rows[0]]
    for column in (NAME_COLUMN, GRADE_COLUMN):
        if column not in header:
            raise SourceLayoutError(f"glas: {path}:1: no column {column!r} in the header {rows[0]}")
    name_at, grade_at = header.index(NAME_COLUMN), header.index(GRADE_COLUMN)
    grades: dict[str, int] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(name_at, grade_at):
            raise SourceLayoutError(f"glas: {path}:{lineno}: expected {len(header)} fields, got {len(row)}")
        name, grade = row[name_at].strip(), row[grade_at].strip().lower()
        if grade not in CLASS_NAMES:
            raise SourceLayoutError(
                f"glas: {path}:{lineno}: grade {grade!r} of {name!r} is not benign/malignant"
            )
        if not name.startswith(("train_", "testA_", "testB_")):
            raise SourceLayoutError(f"glas: {path}:{lineno}: unexpected image name {name!r}")
        if name in grades:
            raise SourceLayoutError(f"glas: {path}:{lineno}: duplicate image name {name!r}")
        grades[name] = CLASS_NAMES.index(grade)
    return grades


class GlaSImporter(Importer):
    """GlaS's official flat folder: grade labels, instance-labelled gland masks, the paper's split."""

    name = "glas"
    mask_boxes = MaskBoxOptions()
    citation = (
        "K. Sirinukunwattana et al., Gland segmentation in colon histology images: the GlaS challenge "
        "contest, Medical Image Analysis 35:489-502, 2017."
    )

    def scan(self) -> SourceScan:
        grades = read_grades(self.require(GRADE_FILE))
        train_names = sorted(name for name in grades if name.startswith("train_"))
        if self.seed is None:
            missing = [name for name in PAPER_VALID if name not in grades]
            if missing:
                raise SourceLayoutError(
                    f"glas: {self.src / GRADE_FILE} lacks {missing[:3]} of the paper's validation list; "
                    "pass --seed N to draw a seeded validation split instead"
                )
            assignment = {name: (VALID if name in PAPER_VALID else TRAIN) for name in train_names}
            policy = "min-max entropy paper split 0 / fold 0 (R1 folds/glas)"
        else:
            by_class: dict[int, list[str]] = {}
            for name in train_names:
                by_class.setdefault(grades[name], []).append(name)
            assignment = stratified_split(by_class, [(VALID, 0.2)], seed=self.seed)
            policy = f"seeded: ceil(20 %) of each grade to val, seed {self.seed}"
        images = []
        for name in sorted(grades):
            images.append(
                SourceImage(
                    path=self.src / f"{name}.bmp",
                    image_id=f"{name}.bmp",
                    label=grades[name],
                    split=assignment.get(name, TEST),
                    masks=(
                        MaskSource(
                            self.src / f"{name}_anno.bmp", read_instances, f"{name}_anno.png", binary=False
                        ),
                    ),
                )
            )
        return SourceScan(
            image_root=self.src,
            class_names=list(CLASS_NAMES),
            images=images,
            extra={"split_policy": policy, "citation": self.citation},
        )
