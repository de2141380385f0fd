"""ILSVRC, CUB and OpenImages30k as distributed with clovaai/wsolevaluation's metadata.

Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020. Layout (``--src`` is
the folder that holds wsolevaluation's ``metadata/`` and ``dataset/``, its default ``--metadata_root`` and
``--data_root``/``--mask_root``)::

    metadata/<DS>/<split>/image_ids.txt        image path relative to dataset/<DS>/
    metadata/<DS>/<split>/class_labels.txt     path,label
    metadata/<DS>/<split>/image_sizes.txt      optional (OpenImages has none): read from the image header
    metadata/<DS>/<split>/localization.txt     optional: boxes path,x0,y0,x1,y1 (CUB, ILSVRC) or masks
                                               path,mask_png,ignore_png (OpenImages; ignore on the first line)
    dataset/<DS>/...                           images (and OpenImages' mask and ignore PNGs)

``<DS>`` is ``ILSVRC``, ``CUB`` or ``OpenImages``; splits ``train``/``val``/``test`` keep their names.
Mask and ignore PNGs are binarised as wsolevaluation does (``value > 0.5`` on the grey level, i.e. non-zero)
and resized (nearest) to their image when sizes differ. Images are checked from their header only (ILSVRC's
1.2 M training images would take hours to decode); ``wsol data check --decode`` decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

from wsol.data.format import Box
from wsol.data.importers.base import (
    TEST,
    TRAIN,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
    read_nonzero,
)

SPLITS = {"train": TRAIN, "val": VALID, "test": TEST}
CITATION = (
    "J. Choe, S. J. Oh, S. Lee, S. Chun, Z. Akata, H. Shim, Evaluating Weakly Supervised Object Localization "
    "Methods Right, CVPR 2020."
)


def _rows(path: Path, fields: tuple[int, ...], tag: str) -> list[tuple[int, list[str]]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) not in fields:
            raise SourceLayoutError(
                f"{tag}: {path}:{lineno}: expected {' or '.join(map(str, fields))} comma-separated fields, "
                f"got {len(cells)}: {line!r}"
            )
        rows.append((lineno, cells))
    return rows


def _class_names(labels: dict[str, int], num_classes: int) -> list[str]:
    """Parent-folder names when they name the classes one to one (CUB, ILSVRC train), else ``"0".."K-1"``."""
    folders: dict[int, set[str]] = {}
    for image_id, label in labels.items():
        folders.setdefault(label, set()).add(PurePosixPath(image_id).parent.name)
    names = [next(iter(folders[k])) if len(folders.get(k, ())) == 1 else "" for k in range(num_classes)]
    if all(names) and len(set(names)) == num_classes:
        return names
    return [str(k) for k in range(num_classes)]


@dataclass
class _Localization:
    """Boxes, mask names and ignore names per image of one split's ``localization.txt``."""

    boxes: dict[str, list[Box]] = field(default_factory=dict)
    masks: dict[str, list[str]] = field(default_factory=dict)
    ignores: dict[str, str] = field(default_factory=dict)


def _mask_source(image_root: Path, name: str) -> MaskSource:
    """A mask or ignore PNG of the source, written under the same relative name with a ``.png`` suffix."""
    return MaskSource(image_root / name, read_nonzero, str(PurePosixPath(name).with_suffix(".png")))


class WsolEvaluationImporter(Importer):
    """One wsolevaluation dataset (``dataset_dir``) read from its metadata."""

    citation = CITATION
    full_decode = False
    dataset_dir: ClassVar[str]

    def scan(self) -> SourceScan:
        metadata = self.require(f"metadata/{self.dataset_dir}", kind="folder")
        image_root = self.require(f"dataset/{self.dataset_dir}", kind="folder")
        present = [name for name in SPLITS if (metadata / name).is_dir()]
        if not present:
            raise SourceLayoutError(f"{self.name}: {metadata} has none of the split folders {list(SPLITS)}")
        images: list[SourceImage] = []
        all_labels: dict[str, dict[str, int]] = {}
        for split_name in present:
            split_dir = metadata / split_name
            ids = self._image_ids(split_dir)
            labels = self._labels(split_dir, ids)
            found = self._localization(split_dir / "localization.txt", set(ids))
            images += [
                self._source_image(image_root, image_id, labels[image_id], SPLITS[split_name], found)
                for image_id in ids
            ]
            all_labels[split_name] = labels
        num_classes = 1 + max(max(labels.values()) for labels in all_labels.values())
        naming_split = "train" if "train" in all_labels else present[0]
        return SourceScan(
            image_root=image_root,
            class_names=_class_names(all_labels[naming_split], num_classes),
            images=images,
            extra={"split_policy": "wsolevaluation metadata (train/val/test)", "citation": self.citation},
        )

    def _image_ids(self, split_dir: Path) -> list[str]:
        """The split's image ids; missing files or an id listed twice raise."""
        for required in ("image_ids.txt", "class_labels.txt"):
            if not (split_dir / required).is_file():
                raise SourceLayoutError(f"{self.name}: {split_dir / required} not found")
        ids = [cells[0] for _, cells in _rows(split_dir / "image_ids.txt", (1,), self.name)]
        if len(set(ids)) != len(ids):
            raise SourceLayoutError(f"{self.name}: {split_dir / 'image_ids.txt'} lists an image twice")
        return ids

    def _labels(self, split_dir: Path, ids: list[str]) -> dict[str, int]:
        """``{image_id: label}``; unknown images, non-integer labels and unlabelled images raise."""
        known = set(ids)
        labels: dict[str, int] = {}
        for lineno, (image_id, label) in _rows(split_dir / "class_labels.txt", (2,), self.name):
            if image_id not in known or not label.isdigit():
                raise SourceLayoutError(
                    f"{self.name}: {split_dir / 'class_labels.txt'}:{lineno}: unknown image {image_id!r} or "
                    f"non-integer label {label!r}"
                )
            labels[image_id] = int(label)
        unlabelled = [image_id for image_id in ids if image_id not in labels]
        if unlabelled:
            raise SourceLayoutError(
                f"{self.name}: {split_dir / 'class_labels.txt'} has no label for {unlabelled[0]}"
            )
        return labels

    def _localization(self, path: Path, known: set[str]) -> _Localization:
        """Box lines (5 fields) and mask lines (3 fields) of the optional ``localization.txt``."""
        found = _Localization()
        if not path.is_file():
            return found
        for lineno, cells in _rows(path, (3, 5), self.name):
            image_id = cells[0]
            if image_id not in known:
                raise SourceLayoutError(f"{self.name}: {path}:{lineno}: unknown image {image_id!r}")
            if len(cells) == 5:
                try:
                    x0, y0, x1, y1 = (float(value) for value in cells[1:])
                except ValueError as err:
                    raise SourceLayoutError(f"{self.name}: {path}:{lineno}: bad box ({err})") from err
                found.boxes.setdefault(image_id, []).append((x0, y0, x1, y1))
                continue
            if cells[2] and image_id in found.masks:
                raise SourceLayoutError(
                    f"{self.name}: {path}:{lineno}: ignore path on a line other than the first "
                    f"of {image_id!r}"
                )
            found.masks.setdefault(image_id, []).append(cells[1])
            if cells[2]:
                found.ignores[image_id] = cells[2]
        return found

    @staticmethod
    def _source_image(
        image_root: Path, image_id: str, label: int, split: str, found: _Localization
    ) -> SourceImage:
        ignore = found.ignores.get(image_id)
        return SourceImage(
            path=image_root / image_id,
            image_id=image_id,
            label=label,
            split=split,
            boxes=tuple(found.boxes.get(image_id, ())),
            masks=tuple(_mask_source(image_root, name) for name in found.masks.get(image_id, ())),
            ignore=_mask_source(image_root, ignore) if ignore else None,
        )


class ILSVRCImporter(WsolEvaluationImporter):
    """ImageNet-1k (ILSVRC 2012) with wsolevaluation's box metadata."""

    name = "ilsvrc"
    dataset_dir = "ILSVRC"


class WsolEvalCUBImporter(WsolEvaluationImporter):
    """CUB-200-2011 with wsolevaluation's metadata (its train/val/test and boxes)."""

    name = "cub_wsolevaluation"
    dataset_dir = "CUB"


class OpenImagesImporter(WsolEvaluationImporter):
    """OpenImages30k (wsolevaluation's subset of OpenImages) with masks and ignore masks."""

    name = "openimages"
    dataset_dir = "OpenImages"
