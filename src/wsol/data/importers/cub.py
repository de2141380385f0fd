"""Caltech-UCSD Birds-200-2011 (CUB) and its 5-class subset CUB5 from the min-max entropy paper.

Wah et al., "The Caltech-UCSD Birds-200-2011 Dataset", Caltech CNS-TR-2011-001. Official layout (``--src`` is
``CUB_200_2011/`` or the folder holding it and the separately distributed ``segmentations/``)::

    CUB_200_2011/images/NNN.Name/*.jpg
    CUB_200_2011/{images,image_class_labels,classes,train_test_split,bounding_boxes}.txt
    segmentations/NNN.Name/*.png      optional, greyscale, value = annotator agreement

Every ``.txt`` file is ``<image id> <value...>`` separated by spaces; boxes are ``x y w h`` floats in pixels,
written as ``x0=x, y0=y, x1=x+w, y1=y+h``. Masks: foreground = value > 127.5 (a majority of annotators, as R1
binarises them). Splits: the official train/test, and ``ceil(20 %)`` of each class's training images as
validation (R1 ``create_folds.py``): 4,794 / 1,200 / 5,794 for CUB, 120 / 30 / 145 for CUB5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from wsol.data.importers.base import (
    TEST,
    TRAIN,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
    binary_reader,
)
from wsol.data.splits import stratified_split

CUB_FILES = (
    "images.txt",
    "image_class_labels.txt",
    "classes.txt",
    "train_test_split.txt",
    "bounding_boxes.txt",
)
MASK_THRESHOLD = 0.5  # of the mask's full scale: more than half of the annotators

# CUB5's classes in the paper's encoding order (drawn with np.random.choice at seed 0; R1
# folds/Caltech-UCSD-Birds-200-2011-CUB5/split_0/fold_0/encoding.yaml): index = position here.
CUB5_CLASSES = (
    "019.Gray_Catbird",
    "171.Myrtle_Warbler",
    "108.White_necked_Raven",
    "099.Ovenbird",
    "178.Swainson_Warbler",
)
# The paper's CUB5 validation images (same file, valid_s_0_f_0.csv), 6 per class.
CUB5_PAPER_VALID = frozenset(
    f"{folder}/{stem}.jpg"
    for folder, stems in {
        "019.Gray_Catbird": (
            "Gray_Catbird_0118_20476", "Gray_Catbird_0127_20034", "Gray_Catbird_0134_20596",
            "Gray_Catbird_0023_20668", "Gray_Catbird_0100_20674", "Gray_Catbird_0091_20416",
        ),
        "171.Myrtle_Warbler": (
            "Myrtle_Warbler_0103_166963", "Myrtle_Warbler_0059_166946", "Myrtle_Warbler_0043_166708",
            "Myrtle_Warbler_0007_166897", "Myrtle_Warbler_0101_166942", "Myrtle_Warbler_0107_166917",
        ),
        "108.White_necked_Raven": (
            "White_Necked_Raven_0027_797355", "White_Necked_Raven_0053_797360",
            "White_Necked_Raven_0063_797361", "White_Necked_Raven_0010_797350",
            "White_Necked_Raven_0020_102730", "White_Necked_Raven_0018_102746",
        ),
        "099.Ovenbird": (
            "Ovenbird_0035_92785", "Ovenbird_0059_92470", "Ovenbird_0027_93086",
            "Ovenbird_0137_92639", "Ovenbird_0077_92590", "Ovenbird_0064_93208",
        ),
        "178.Swainson_Warbler": (
            "Swainson_Warbler_0004_794874", "Swainson_Warbler_0039_794859", "Swainson_Warbler_0019_174692",
            "Swainson_Warbler_0048_794887", "Swainson_Warbler_0047_794870", "Swainson_Warbler_0034_794890",
        ),
    }.items()
    for stem in stems
)  # fmt: skip


def _read_table(path: Path, fields: int) -> dict[str, list[str]]:
    """``{image id: [values]}`` of a CUB ``.txt`` file; a clear error on a malformed line."""
    table: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != fields:
            raise SourceLayoutError(
                f"cub: {path}:{lineno}: expected {fields} space-separated fields, got {len(parts)}: {line!r}"
            )
        if parts[0] in table:
            raise SourceLayoutError(f"cub: {path}:{lineno}: duplicate id {parts[0]!r}")
        table[parts[0]] = parts[1:]
    return table


@dataclass(frozen=True)
class _CUBTables:
    """The official ``.txt`` files of CUB-200-2011, read."""

    paths: dict[str, list[str]]
    labels: dict[str, list[str]]
    class_of_id: dict[str, str]
    is_train: dict[str, list[str]]
    boxes: dict[str, list[str]]


class CUBImporter(Importer):
    """Caltech-UCSD Birds-200-2011: official train/test, seeded validation, boxes and segmentations."""

    name = "cub"
    citation = (
        "C. Wah, S. Branson, P. Welinder, P. Perona, S. Belongie, The Caltech-UCSD Birds-200-2011 Dataset, "
        "Caltech CNS-TR-2011-001, 2011."
    )
    classes: ClassVar[tuple[str, ...] | None] = None
    paper_valid: ClassVar[frozenset[str] | None] = None

    def _root(self) -> Path:
        for root in (self.src, self.src / "CUB_200_2011"):
            if (root / "images.txt").is_file():
                break
        else:
            raise SourceLayoutError(
                f"{self.name}: {self.src / 'images.txt'} not found (nor in CUB_200_2011/); expected the "
                "official CUB_200_2011 folder or its parent"
            )
        for name in CUB_FILES:
            if not (root / name).is_file():
                raise SourceLayoutError(f"{self.name}: {root / name} not found; expected the official layout")
        if not (root / "images").is_dir():
            raise SourceLayoutError(f"{self.name}: folder {root / 'images'} not found")
        return root

    def _tables(self, root: Path) -> _CUBTables:
        """Read the official tables; an image without a label or split line raises."""
        paths = _read_table(root / "images.txt", 2)
        labels = _read_table(root / "image_class_labels.txt", 2)
        classes = _read_table(root / "classes.txt", 2)
        is_train = _read_table(root / "train_test_split.txt", 2)
        boxes = _read_table(root / "bounding_boxes.txt", 5)
        for table_name, table in (("image_class_labels", labels), ("train_test_split", is_train)):
            missing = [image for image in paths if image not in table]
            if missing:
                raise SourceLayoutError(
                    f"{self.name}: {root / table_name}.txt has no line for image id {missing[0]}"
                )
        class_of_id = {class_id: values[0] for class_id, values in classes.items()}
        return _CUBTables(paths, labels, class_of_id, is_train, boxes)

    def _selected_classes(self, root: Path, class_of_id: dict[str, str]) -> list[str]:
        """Every class in id order, or the importer's ``classes`` (which must all exist)."""
        if self.classes is None:
            return [class_of_id[class_id] for class_id in sorted(class_of_id, key=int)]
        absent = [name for name in self.classes if name not in class_of_id.values()]
        if absent:
            raise SourceLayoutError(f"{self.name}: {root / 'classes.txt'} lacks the classes {absent}")
        return list(self.classes)

    def _entries(
        self, root: Path, tables: _CUBTables, index_of: dict[str, int]
    ) -> list[tuple[str, str, int, bool]]:
        """``(image id, relative path, label, is_train)`` of each image of a selected class."""
        entries: list[tuple[str, str, int, bool]] = []
        for image, (relative,) in tables.paths.items():
            class_id = tables.labels[image][0]
            if class_id not in tables.class_of_id:
                raise SourceLayoutError(
                    f"{self.name}: {root / 'image_class_labels.txt'}: unknown class {class_id}"
                )
            class_name = tables.class_of_id[class_id]
            if class_name not in index_of:
                continue
            flag = tables.is_train[image][0]
            if flag not in ("0", "1"):
                raise SourceLayoutError(
                    f"{self.name}: {root / 'train_test_split.txt'}: image {image} has flag {flag!r}, "
                    "expected 0 or 1"
                )
            entries.append((image, relative, index_of[class_name], flag == "1"))
        return entries

    def scan(self) -> SourceScan:
        root = self._root()
        tables = self._tables(root)
        selected = self._selected_classes(root, tables.class_of_id)
        index_of = {name: index for index, name in enumerate(selected)}
        seg_root = next(
            (folder for folder in (root / "segmentations", root.parent / "segmentations") if folder.is_dir()),
            None,
        )
        warnings: list[str] = []
        entries = self._entries(root, tables, index_of)
        assignment, policy = self._assign_valid(entries)
        mask_reader = binary_reader(MASK_THRESHOLD)
        images = []
        for image, relative, label, train in entries:
            box: tuple = ()
            if image in tables.boxes:
                x, y, w, h = (float(value) for value in tables.boxes[image])
                box = ((x, y, x + w, y + h),)
            else:
                warnings.append(f"{root / 'bounding_boxes.txt'}: no box for {relative}")
            masks: tuple[MaskSource, ...] = ()
            if seg_root is not None:
                mask_name = str(Path(relative).with_suffix(".png"))
                if (seg_root / mask_name).is_file():
                    masks = (MaskSource(seg_root / mask_name, mask_reader, mask_name),)
                else:
                    warnings.append(
                        f"{seg_root / mask_name}: segmentation not found; image kept without mask"
                    )
            images.append(
                SourceImage(
                    path=root / "images" / relative,
                    image_id=relative,
                    label=label,
                    split=(assignment[relative] if train else TEST),
                    boxes=box,
                    masks=masks,
                )
            )
        if seg_root is None:
            warnings.append(f"no segmentations/ folder next to {root}: boxes only, no masks")
        return SourceScan(
            image_root=root / "images",
            class_names=selected,
            images=images,
            extra={"split_policy": policy, "citation": self.citation},
            warnings=warnings,
        )

    def _assign_valid(self, entries: list[tuple[str, str, int, bool]]) -> tuple[dict[str, str], str]:
        train = [(relative, label) for _, relative, label, is_train in entries if is_train]
        if self.seed is None and self.paper_valid is not None:
            present = {relative for relative, _ in train}
            missing = sorted(self.paper_valid - present)
            if missing:
                raise SourceLayoutError(
                    f"{self.name}: the paper's validation image {missing[0]} (and {len(missing) - 1} more) "
                    "is not among the official training images; pass --seed N to draw a seeded validation "
                    "split instead"
                )
            policy = "min-max entropy paper split 0 / fold 0 (R1 folds/Caltech-UCSD-Birds-200-2011-CUB5)"
            return {
                relative: (VALID if relative in self.paper_valid else TRAIN) for relative, _ in train
            }, policy
        by_class: dict[int, list[str]] = {}
        for relative, label in train:
            by_class.setdefault(label, []).append(relative)
        policy = (
            f"official train/test; seeded ceil(20 %) of each class's train to val, seed {self.split_seed}"
        )
        return stratified_split(by_class, [(VALID, 0.2)], seed=self.split_seed), policy


class CUB5Importer(CUBImporter):
    """CUB restricted to the paper's five classes, re-indexed 0..4 in the paper's encoding."""

    name = "cub5"
    classes = CUB5_CLASSES
    paper_valid = CUB5_PAPER_VALID
