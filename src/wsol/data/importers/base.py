"""Shared machinery of the dataset importers: source description, seeded splits, the import loop.

An importer only *reads* an official layout (:meth:`Importer.scan`) and says, for every image, where it is,
its label, split, boxes and how to read its masks. :func:`run_import` does the rest the same way for every
dataset: it decodes each image (reporting, not raising, on the ones that fail), binarises and writes the masks
as PNGs, optionally copies the images, and writes the library's format (:mod:`wsol.data.format`) inside
:func:`wsol.io.atomic_directory`, so a failed import leaves nothing behind and a repeated one gives identical
files.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image
from tqdm import tqdm

from wsol.data.format import Box, DatasetInfo, ImageRecord, write_dataset
from wsol.data.images import encode_png, mask_fraction, read_image, read_mask
from wsol.data.mask_boxes import OBJECT_BOX, MaskBoxOptions, component_boxes, object_box
from wsol.data.output import check_output_folder
from wsol.io import atomic_directory

TRAIN, VALID, TEST = "train", "val", "test"
SPLIT_ORDER = (TRAIN, VALID, TEST)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

MaskReader = Callable[[Path], np.ndarray]


class SourceLayoutError(ValueError):
    """The source folder is not in the layout the importer expects; the message names what is missing."""


@dataclass(frozen=True)
class MaskSource:
    """One mask file of the source and how to turn it into a label map (0 = background).

    ``out_name`` is the mask's path relative to the output's mask root; ``binary`` writes it as 0/255,
    otherwise its instance ids are kept.
    """

    path: Path
    reader: MaskReader
    out_name: str
    binary: bool = True


@dataclass(frozen=True)
class SourceImage:
    """One image of the source, as the importer found it."""

    path: Path
    image_id: str
    label: int
    split: str
    boxes: tuple[Box, ...] = ()
    masks: tuple[MaskSource, ...] = ()
    ignore: MaskSource | None = None
    extra_boxes: tuple[tuple[str, Box], ...] = ()


@dataclass
class SourceScan:
    """What :meth:`Importer.scan` found: every image, the class names and dataset-level facts."""

    image_root: Path
    class_names: list[str]
    images: list[SourceImage]
    extra: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    no_object_classes: list[int] = field(default_factory=list)


@dataclass
class ImportReport:
    """Outcome of :func:`run_import`: counts per split, images left out (with the reason) and warnings."""

    out: Path
    name: str
    counts: dict[str, int]
    skipped: list[tuple[str, str]]
    warnings: list[str]

    def format(self) -> str:
        lines = [f"imported {self.name} into {self.out}"]
        lines += [f"  {split}: {count} images" for split, count in self.counts.items()]
        if self.skipped:
            lines.append(f"  {len(self.skipped)} image(s) left out:")
            lines += [f"    {path}: {reason}" for path, reason in self.skipped]
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s):")
            lines += [f"    {warning}" for warning in self.warnings]
        return "\n".join(lines)


class Importer(ABC):
    """Reads one dataset's official layout. Subclasses set ``name``, ``citation`` and implement ``scan``.

    ``seed`` draws the seeded splits; ``None`` keeps the dataset's reference split when it has one (the
    min-max entropy paper's lists for GlaS and CUB5) and seed 0 otherwise.
    """

    name: ClassVar[str]
    citation: ClassVar[str]
    full_decode: ClassVar[bool] = True
    mask_boxes: ClassVar[MaskBoxOptions | None] = None
    """When set, images with masks but no boxes get boxes from their masks (``wsol.data.mask_boxes``)."""

    def __init__(self, src: Path, *, seed: int | None = None) -> None:
        self.src = Path(src).expanduser().absolute()
        self.seed = seed
        if not self.src.is_dir():
            raise SourceLayoutError(f"{self.name}: source folder {self.src} does not exist")

    @property
    def split_seed(self) -> int:
        return 0 if self.seed is None else self.seed

    def require(self, relative: str, *, kind: str = "file") -> Path:
        """Path of a file (or folder) the layout must contain; a clear error when it is missing."""
        path = self.src / relative
        exists = path.is_dir() if kind == "folder" else path.is_file()
        if not exists:
            raise SourceLayoutError(
                f"{self.name}: {path} not found; expected the official layout ({kind} {relative!r} "
                f"under {self.src})"
            )
        return path

    @abstractmethod
    def scan(self) -> SourceScan:
        """Validate the layout and list every image with its label, split, boxes and masks."""


def probe_image(path: Path, *, full_decode: bool) -> tuple[int, int]:
    """``(width, height)`` of an image file; with ``full_decode`` the pixels are decoded too.

    Raises ``OSError``/``ValueError`` with the reason when the file is missing or does not decode.
    """
    if not path.is_file():
        raise FileNotFoundError("file not found")
    with Image.open(path) as image:
        width, height = image.size
    if full_decode:
        read_image(path)  # may decode a huge JPEG reduced (wsol.data.images): the size is the file's
    if width <= 0 or height <= 0:
        raise ValueError(f"empty image ({width}x{height})")
    return int(width), int(height)


def binary_reader(threshold: float) -> MaskReader:
    """Reader that binarises a grey mask as ``value > threshold x full scale`` (CUB's 0.5 = annotator
    majority: 127.5 of 255 in an 8-bit mask, 32767.5 of 65535 in a 16-bit one)."""

    def read(path: Path) -> np.ndarray:
        return (mask_fraction(read_mask(path)) > threshold).astype(np.uint8)

    return read


def read_nonzero(path: Path) -> np.ndarray:
    """Foreground = any non-zero value (GlaS, PH2, wsolevaluation's OpenImages masks)."""
    return (read_mask(path) > 0).astype(np.uint8)


def read_instances(path: Path) -> np.ndarray:
    """Instance-labelled mask kept as it is (0 = background, 1..K = instances), e.g. GlaS ``_anno.bmp``."""
    return read_mask(path)


def encode_mask_png(labels: np.ndarray, *, binary: bool) -> bytes:
    """PNG bytes of a mask: binary masks as 0/255, instance maps with their ids (16 bit above 255)."""
    if binary:
        return encode_png(np.where(labels > 0, 255, 0).astype(np.uint8))
    return encode_png(labels.astype(np.uint8 if int(labels.max(initial=0)) <= 255 else np.uint16))


def _fit_mask(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    if labels.shape == (height, width):
        return labels
    dtype = np.uint16 if labels.max(initial=0) > 255 else np.uint8
    image = Image.fromarray(labels.astype(dtype))
    return np.asarray(image.resize((width, height), Image.Resampling.NEAREST))


def _clip_box(box: Box, width: int, height: int) -> Box | None:
    x0, y0, x1, y1 = box
    x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
    y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def run_import(
    importer: Importer,
    out: Path,
    *,
    copy: bool = False,
    progress: bool = False,
    overwrite: bool = False,
) -> ImportReport:
    """Import ``importer``'s source into ``out`` (replaced atomically); returns what was imported or left out.

    Images that are missing or fail to decode, and images whose mask fails to decode, are left out and listed
    in the report (and in ``dataset.json``'s ``extra.skipped``); a split left empty is an error. Boxes are
    clipped to the image; masks are resized (nearest) to the image when their size differs. With ``copy`` the
    images are copied byte for byte under ``out/images``; otherwise ``image_root`` points at the source.
    ``out`` must be new, empty, or (with ``overwrite``) a dataset of this library and nothing else
    (:func:`wsol.data.output.check_output_folder`).
    """
    out = Path(out).expanduser().absolute()

    def check() -> None:
        check_output_folder(out, force=overwrite, sources=(importer.src,))

    check()
    scan = importer.scan()
    if not scan.images:
        raise SourceLayoutError(f"{importer.name}: no image listed in the source {importer.src}")
    _check_mask_owners(importer, scan)
    log = _ImportLog(warnings=list(scan.warnings))
    splits: dict[str, list[ImageRecord]] = {split: [] for split in SPLIT_ORDER}
    with atomic_directory(out, check=check) as tmp:
        for item in tqdm(scan.images, desc=f"import {importer.name}", unit="img", disable=not progress):
            record = _import_image(importer, item, tmp, copy=copy, log=log)
            if record is not None:
                splits.setdefault(item.split, []).append(record)
        kept = _kept_splits(importer, scan, splits, log.skipped)
        write_dataset(tmp, _dataset_info(importer, scan, kept, copy=copy, skipped=log.skipped), kept)
    return ImportReport(
        out=out,
        name=importer.name,
        counts={split: len(records) for split, records in kept.items()},
        skipped=log.skipped,
        warnings=log.warnings,
    )


_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass
class _ImportLog:
    """Images left out (path, reason) and warnings, in the order the import met them."""

    warnings: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _mask_sources(item: SourceImage) -> list[MaskSource]:
    """The item's masks, then its ignore mask when it has one."""
    return [*item.masks, *([item.ignore] if item.ignore is not None else [])]


def _check_mask_owners(importer: Importer, scan: SourceScan) -> None:
    """Raise when two images would write the same mask file."""
    owners: dict[str, str] = {}
    for item in scan.images:
        for source in _mask_sources(item):
            owner = owners.setdefault(source.out_name, item.image_id)
            if owner != item.image_id:
                raise SourceLayoutError(
                    f"{importer.name}: images {owner!r} and {item.image_id!r} would both write mask "
                    f"{source.out_name!r}"
                )


def _import_image(
    importer: Importer, item: SourceImage, tmp: Path, *, copy: bool, log: _ImportLog
) -> ImageRecord | None:
    """Decode one image and its masks, write its files under ``tmp``; ``None`` (logged) when it fails."""
    try:
        width, height = probe_image(item.path, full_decode=importer.full_decode)
    except _DECODE_ERRORS as err:
        log.skipped.append((str(item.path), f"image does not decode: {err}"))
        return None
    try:
        mask_files, union = _read_masks(item, width, height, log.warnings)
    except _DECODE_ERRORS as err:
        log.skipped.append((str(item.path), f"mask does not decode: {err}"))
        return None
    boxes = _clipped_boxes(item, width, height, log.warnings)
    extra_boxes = list(item.extra_boxes)
    if importer.mask_boxes is not None and item.masks and not boxes:
        boxes = component_boxes(union, importer.mask_boxes)
        whole = object_box(union)
        extra_boxes += [(OBJECT_BOX, whole)] if whole is not None else []
    for name, data in mask_files:
        target = tmp / "masks" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if copy:
        target = tmp / "images" / item.image_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.path, target)
    return ImageRecord(
        image_id=item.image_id,
        label=item.label,
        width=width,
        height=height,
        boxes=tuple(boxes),
        mask_paths=tuple(source.out_name for source in item.masks),
        ignore_path=item.ignore.out_name if item.ignore is not None else None,
        extra_boxes=tuple(extra_boxes),
    )


def _read_masks(
    item: SourceImage, width: int, height: int, warnings: list[str]
) -> tuple[list[tuple[str, bytes]], np.ndarray]:
    """PNG bytes of each mask (fitted to the image) and the union of the object masks (ignore excluded)."""
    mask_files: list[tuple[str, bytes]] = []
    union = np.zeros((height, width), np.int64)
    for source in _mask_sources(item):
        if not source.path.is_file():
            raise FileNotFoundError(f"mask {source.path} not found")
        labels = source.reader(source.path)
        if labels.shape != (height, width):
            warnings.append(
                f"{source.path}: mask is {labels.shape[1]}x{labels.shape[0]}, image is "
                f"{width}x{height}; resized (nearest)"
            )
            labels = _fit_mask(labels, width, height)
        mask_files.append((source.out_name, encode_mask_png(labels, binary=source.binary)))
        if source is not item.ignore:
            union = np.maximum(union, labels)
    return mask_files, union


def _clipped_boxes(item: SourceImage, width: int, height: int, warnings: list[str]) -> list[Box]:
    """The item's boxes clipped to the image; boxes outside it are dropped with a warning."""
    boxes = []
    for box in item.boxes:
        clipped = _clip_box(box, width, height)
        if clipped is None:
            warnings.append(f"{item.image_id}: box {box} lies outside the {width}x{height} image; dropped")
        else:
            boxes.append(clipped)
    return boxes


def _kept_splits(
    importer: Importer,
    scan: SourceScan,
    splits: dict[str, list[ImageRecord]],
    skipped: list[tuple[str, str]],
) -> dict[str, list[ImageRecord]]:
    """The non-empty splits, records sorted by image id; raise when a split of the source came out empty."""
    expected = {item.split for item in scan.images}
    missing = [split for split, records in splits.items() if not records and split in expected]
    if missing:
        raise SourceLayoutError(
            f"{importer.name}: no image of split(s) {missing} could be imported from {importer.src} "
            f"({len(skipped)} left out; first: {skipped[0] if skipped else 'none'})"
        )
    return {split: sorted(records, key=lambda r: r.image_id) for split, records in splits.items() if records}


def _dataset_info(
    importer: Importer,
    scan: SourceScan,
    kept: dict[str, list[ImageRecord]],
    *,
    copy: bool,
    skipped: list[tuple[str, str]],
) -> DatasetInfo:
    """``dataset.json`` of the import: class names, image root, and the images left out."""
    return DatasetInfo(
        name=importer.name,
        num_classes=len(scan.class_names),
        splits=list(kept),
        image_root="images" if copy else str(scan.image_root),
        mask_root="masks",
        class_names=list(scan.class_names),
        extra={**scan.extra, "importer": importer.name, "skipped": [list(entry) for entry in skipped]},
        no_object_classes=list(scan.no_object_classes),
    )
