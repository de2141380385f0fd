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


class WsolEvaluationImporter(Importer):
    """One wsolevaluation dataset (``dataset_dir``) read from its metadata."""

    citation = CITATION
    full_decode = False
    dataset_dir: ClassVar[str]

    def scan(self) -> SourceScan:
        tag = self.name
        metadata = self.require(f"metadata/{self.dataset_dir}", kind="folder")
        image_root = self.require(f"dataset/{self.dataset_dir}", kind="folder")
        present = [name for name in SPLITS if (metadata / name).is_dir()]
        if not present:
            raise SourceLayoutError(f"{tag}: {metadata} has none of the split folders {list(SPLITS)}")
        images: list[SourceImage] = []
        all_labels: dict[str, dict[str, int]] = {}
        for split_name in present:
            split_dir = metadata / split_name
            for required in ("image_ids.txt", "class_labels.txt"):
                if not (split_dir / required).is_file():
                    raise SourceLayoutError(f"{tag}: {split_dir / required} not found")
            ids = [cells[0] for _, cells in _rows(split_dir / "image_ids.txt", (1,), tag)]
            known = set(ids)
            if len(known) != len(ids):
                raise SourceLayoutError(f"{tag}: {split_dir / 'image_ids.txt'} lists an image twice")
            labels: dict[str, int] = {}
            for lineno, (image_id, label) in _rows(split_dir / "class_labels.txt", (2,), tag):
                if image_id not in known or not label.isdigit():
                    raise SourceLayoutError(
                        f"{tag}: {split_dir / 'class_labels.txt'}:{lineno}: unknown image {image_id!r} or "
                        f"non-integer label {label!r}"
                    )
                labels[image_id] = int(label)
            unlabelled = [image_id for image_id in ids if image_id not in labels]
            if unlabelled:
                raise SourceLayoutError(
                    f"{tag}: {split_dir / 'class_labels.txt'} has no label for {unlabelled[0]}"
                )
            boxes: dict[str, list[Box]] = {}
            masks: dict[str, list[str]] = {}
            ignores: dict[str, str] = {}
            localization = split_dir / "localization.txt"
            if localization.is_file():
                for lineno, cells in _rows(localization, (3, 5), tag):
                    image_id = cells[0]
                    if image_id not in known:
                        raise SourceLayoutError(f"{tag}: {localization}:{lineno}: unknown image {image_id!r}")
                    if len(cells) == 5:
                        try:
                            x0, y0, x1, y1 = (float(value) for value in cells[1:])
                        except ValueError as err:
                            raise SourceLayoutError(
                                f"{tag}: {localization}:{lineno}: bad box ({err})"
                            ) from err
                        boxes.setdefault(image_id, []).append((x0, y0, x1, y1))
                    else:
                        if cells[2] and image_id in masks:
                            raise SourceLayoutError(
                                f"{tag}: {localization}:{lineno}: ignore path on a line other than the "
                                f"first of {image_id!r}"
                            )
                        masks.setdefault(image_id, []).append(cells[1])
                        if cells[2]:
                            ignores[image_id] = cells[2]
            for image_id in ids:
                mask_sources = tuple(
                    MaskSource(image_root / name, read_nonzero, str(PurePosixPath(name).with_suffix(".png")))
                    for name in masks.get(image_id, ())
                )
                ignore = ignores.get(image_id)
                images.append(
                    SourceImage(
                        path=image_root / image_id,
                        image_id=image_id,
                        label=labels[image_id],
                        split=SPLITS[split_name],
                        boxes=tuple(boxes.get(image_id, ())),
                        masks=mask_sources,
                        ignore=(
                            MaskSource(
                                image_root / ignore,
                                read_nonzero,
                                str(PurePosixPath(ignore).with_suffix(".png")),
                            )
                            if ignore
                            else None
                        ),
                    )
                )
            all_labels[split_name] = labels
        num_classes = 1 + max(max(labels.values()) for labels in all_labels.values())
        naming_split = "train" if "train" in all_labels else present[0]
        return SourceScan(
            image_root=image_root,
            class_names=_class_names(all_labels[naming_split], num_classes),
            images=images,
            extra={"split_policy": "wsolevaluation metadata (train/val/test)", "citation": self.citation},
        )


class ILSVRCImporter(WsolEvaluationImporter):
    name = "ilsvrc"
    dataset_dir = "ILSVRC"


class WsolEvalCUBImporter(WsolEvaluationImporter):
    name = "cub_wsolevaluation"
    dataset_dir = "CUB"


class OpenImagesImporter(WsolEvaluationImporter):
    name = "openimages"
    dataset_dir = "OpenImages"
