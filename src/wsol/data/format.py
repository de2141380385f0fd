"""The on-disk dataset format shared by every dataset of the library.

It extends clovaai/wsolevaluation's metadata (Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right", CVPR 2020) so that its folders read as they are::

    ROOT/
      dataset.json                 name, format version, number of classes, image/mask roots, splits
      classes.txt                  optional: ``index,name`` per line
      metadata/<split>/
        image_ids.txt              one image id per line (the image path relative to the image root)
        class_labels.txt           ``image_id,label``
        image_sizes.txt            ``image_id,width,height`` (original pixels)
        localization.txt           boxes ``image_id,x0,y0,x1,y1`` (one line per box), or masks
                                   ``image_id,mask_path,ignore_path`` as in wsolevaluation's OpenImages
        masks.txt                  optional (our extension): ``image_id,mask_path,ignore_path``, so that a
                                   dataset can carry boxes *and* masks
        extra_boxes.txt            optional (our extension): ``image_id,kind,x0,y0,x1,y1``, boxes that box
                                   metrics do not use: ``object`` (the whole-object box of a mask), ``head``
                                   (Oxford-IIIT Pet head boxes)

Mask files are greyscale PNGs, foreground = value > 0 (instance-labelled masks keep their ids); several
lines for one image are instance masks whose union is the foreground. The ignore path is given on the first
mask line of an image only (wsolevaluation's rule); ignore pixels are excluded from pixel metrics.

"No object": ``dataset.json``'s ``no_object_classes`` lists the classes whose images show no object (BUSI's
``normal``). Their records carry no mask and no box; they are classified but left out of every localization
metric (``docs/data.md``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
METADATA_DIR = "metadata"
DATASET_FILE = "dataset.json"
CLASSES_FILE = "classes.txt"

Box = tuple[float, float, float, float]


class DatasetFormatError(ValueError):
    """A dataset file is missing or malformed; the message names the file (and line when there is one)."""


@dataclass(frozen=True)
class ImageRecord:
    """Everything the metadata says about one image."""

    image_id: str
    label: int
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    mask_paths: tuple[str, ...] = ()
    ignore_path: str | None = None
    extra_boxes: tuple[tuple[str, Box], ...] = ()

    @property
    def has_mask(self) -> bool:
        return bool(self.mask_paths)


@dataclass
class DatasetInfo:
    """Dataset-level description stored in ``dataset.json`` (+ ``classes.txt``)."""

    name: str
    num_classes: int
    splits: list[str]
    image_root: str = "images"
    mask_root: str = "masks"
    class_names: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    no_object_classes: list[int] = field(default_factory=list)

    def resolve_image_root(self, root: Path) -> Path:
        """The image root (relative to ``root`` unless absolute); a clear error when it has moved."""
        path = (root / self.image_root).resolve()
        if not path.is_dir():
            raise DatasetFormatError(
                f"{Path(root) / DATASET_FILE}: image root {path} not found. The images are read in place "
                "from the folder given to `wsol data import`; if it moved, re-point the dataset with "
                f"`wsol data repoint {root} --image-root NEW_FOLDER` (or re-import with --copy)"
            )
        return path

    def resolve_mask_root(self, root: Path) -> Path:
        return (root / self.mask_root).resolve()


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of ``path`` with their 1-based line numbers in the file (blank lines keep counting)."""
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetFormatError(f"{path}: not UTF-8 text ({err})") from err
    return [
        (lineno, line.rstrip("\r")) for lineno, line in enumerate(text.split("\n"), start=1) if line.strip()
    ]


def _read_lines(path: Path) -> list[str]:
    return [line for _, line in _numbered_lines(path)]


def _split_fields(path: Path, lineno: int, line: str, expected: int | Sequence[int]) -> list[str]:
    fields = [part.strip() for part in line.split(",")]
    allowed = (expected,) if isinstance(expected, int) else tuple(expected)
    if len(fields) not in allowed:
        raise DatasetFormatError(
            f"{path}:{lineno}: expected {' or '.join(map(str, allowed))} comma-separated fields, "
            f"got {len(fields)}: {line!r}"
        )
    return fields


def _to_number(path: Path, lineno: int, text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError as err:
        raise DatasetFormatError(f"{path}:{lineno}: {text!r} is not a valid {kind.__name__}") from err


def read_split_metadata(split_dir: Path, num_classes: int | None = None) -> list[ImageRecord]:
    """Read one split folder (ours or wsolevaluation's) and validate it.

    Raises DatasetFormatError naming the file and line for: duplicate ids, ids missing from a file, unknown
    labels (outside ``[0, num_classes)`` when given), boxes outside the image or inverted, an empty split.
    """
    split_dir = Path(split_dir)
    seen = _read_image_ids(split_dir / "image_ids.txt")
    labels_path, sizes_path = split_dir / "class_labels.txt", split_dir / "image_sizes.txt"
    labels = _read_labels(labels_path, seen, num_classes)
    sizes = _read_sizes(sizes_path, seen)
    localization = _Localization()
    for name in ("localization.txt", "masks.txt"):
        if (split_dir / name).is_file():
            localization.read(split_dir / name, seen, sizes)
    extra_boxes = _read_extra_boxes(split_dir / "extra_boxes.txt", seen)
    records = []
    for image_id in seen:
        if image_id not in labels:
            raise DatasetFormatError(f"{labels_path}: no label for image id {image_id!r}")
        if image_id not in sizes:
            raise DatasetFormatError(f"{sizes_path}: no size for image id {image_id!r}")
        width, height = sizes[image_id]
        records.append(
            ImageRecord(
                image_id=image_id,
                label=labels[image_id],
                width=width,
                height=height,
                boxes=tuple(localization.boxes.get(image_id, ())),
                mask_paths=tuple(localization.masks.get(image_id, ())),
                ignore_path=localization.ignores.get(image_id),
                extra_boxes=tuple(extra_boxes.get(image_id, ())),
            )
        )
    return records


def _read_image_ids(path: Path) -> dict[str, int]:
    """``{image_id: line number}`` of ``image_ids.txt`` in file order; duplicates and an empty split raise."""
    seen: dict[str, int] = {}
    for lineno, line in _numbered_lines(path):
        image_id = line.strip()
        if image_id in seen:
            raise DatasetFormatError(
                f"{path}:{lineno}: duplicate image id {image_id!r} (first on line {seen[image_id]})"
            )
        seen[image_id] = lineno
    if not seen:
        raise DatasetFormatError(f"{path}: the split is empty")
    return seen


def _read_labels(path: Path, seen: Mapping[str, int], num_classes: int | None) -> dict[str, int]:
    """``{image_id: label}`` of ``class_labels.txt``; unknown ids, second lines and bad labels raise."""
    labels: dict[str, int] = {}
    for lineno, line in _numbered_lines(path):
        image_id, label_text = _split_fields(path, lineno, line, 2)
        if image_id not in seen:
            raise DatasetFormatError(f"{path}:{lineno}: unknown image id {image_id!r}")
        if image_id in labels:
            raise DatasetFormatError(f"{path}:{lineno}: second label line for image id {image_id!r}")
        label = int(_to_number(path, lineno, label_text, int))
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise DatasetFormatError(
                f"{path}:{lineno}: unknown label {label} for {image_id!r}"
                + (f" (expected 0..{num_classes - 1})" if num_classes is not None else "")
            )
        labels[image_id] = label
    return labels


def _read_sizes(path: Path, seen: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """``{image_id: (width, height)}`` of ``image_sizes.txt``; unknown ids, second lines, sizes <= 0 raise."""
    sizes: dict[str, tuple[int, int]] = {}
    for lineno, line in _numbered_lines(path):
        image_id, w_text, h_text = _split_fields(path, lineno, line, 3)
        if image_id not in seen:
            raise DatasetFormatError(f"{path}:{lineno}: unknown image id {image_id!r}")
        if image_id in sizes:
            raise DatasetFormatError(f"{path}:{lineno}: second size line for image id {image_id!r}")
        width = int(_to_number(path, lineno, w_text, int))
        height = int(_to_number(path, lineno, h_text, int))
        if width <= 0 or height <= 0:
            raise DatasetFormatError(f"{path}:{lineno}: non-positive size {width}x{height}")
        sizes[image_id] = (width, height)
    return sizes


@dataclass
class _Localization:
    """Boxes, mask paths and ignore paths per image id, from ``localization.txt`` and ``masks.txt``."""

    boxes: dict[str, list[Box]] = field(default_factory=dict)
    masks: dict[str, list[str]] = field(default_factory=dict)
    ignores: dict[str, str] = field(default_factory=dict)

    def read(self, path: Path, seen: Mapping[str, int], sizes: Mapping[str, tuple[int, int]]) -> None:
        """Add the box lines (5 fields) and mask lines (3 fields) of ``path``."""
        for lineno, line in _numbered_lines(path):
            fields = _split_fields(path, lineno, line, (3, 5))
            image_id = fields[0]
            if image_id not in seen:
                raise DatasetFormatError(f"{path}:{lineno}: unknown image id {image_id!r}")
            if len(fields) == 5:
                box = _parse_box(path, lineno, fields, sizes.get(image_id))
                self.boxes.setdefault(image_id, []).append(box)
            else:
                self._add_mask(path, lineno, fields)

    def _add_mask(self, path: Path, lineno: int, fields: Sequence[str]) -> None:
        image_id, mask_path, ignore_path = fields
        if not mask_path:
            raise DatasetFormatError(f"{path}:{lineno}: empty mask path for {image_id!r}")
        first_line_of_image = image_id not in self.masks
        if ignore_path and not first_line_of_image:
            raise DatasetFormatError(
                f"{path}:{lineno}: ignore path must be given on the first mask line of {image_id!r} only"
            )
        self.masks.setdefault(image_id, []).append(mask_path)
        if ignore_path:
            self.ignores[image_id] = ignore_path


def _parse_box(path: Path, lineno: int, fields: Sequence[str], size: tuple[int, int] | None) -> Box:
    """The box of a 5-field localization line; non-finite, inverted or (with ``size``) outside boxes raise."""
    image_id = fields[0]
    x0, y0, x1, y1 = (float(_to_number(path, lineno, v, float)) for v in fields[1:])
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise DatasetFormatError(f"{path}:{lineno}: non-finite box {fields[1:]} for {image_id!r}")
    if x1 < x0 or y1 < y0:
        raise DatasetFormatError(f"{path}:{lineno}: inverted box {fields[1:]} for {image_id!r}")
    if size is not None:
        width, height = size
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise DatasetFormatError(
                f"{path}:{lineno}: box ({x0}, {y0}, {x1}, {y1}) lies outside the "
                f"{width}x{height} image {image_id!r}"
            )
    return (x0, y0, x1, y1)


def _read_extra_boxes(path: Path, known: Mapping[str, int]) -> dict[str, list[tuple[str, Box]]]:
    """``{image_id: [(kind, box), ...]}`` from the optional ``extra_boxes.txt``."""
    extra: dict[str, list[tuple[str, Box]]] = {}
    if not path.is_file():
        return extra
    for lineno, line in _numbered_lines(path):
        image_id, kind, *values = _split_fields(path, lineno, line, 6)
        if image_id not in known:
            raise DatasetFormatError(f"{path}:{lineno}: unknown image id {image_id!r}")
        x0, y0, x1, y1 = (float(_to_number(path, lineno, v, float)) for v in values)
        if not kind or x1 < x0 or y1 < y0:
            raise DatasetFormatError(f"{path}:{lineno}: expected a kind and x0 <= x1, y0 <= y1: {line!r}")
        extra.setdefault(image_id, []).append((kind, (x0, y0, x1, y1)))
    return extra


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_split_metadata(split_dir: Path, records: Sequence[ImageRecord]) -> None:
    """Write one split folder; boxes go to ``localization.txt`` and masks to ``masks.txt``."""
    if not records:
        raise DatasetFormatError(f"{split_dir}: refusing to write an empty split")
    split_dir.mkdir(parents=True, exist_ok=True)
    ids, labels, sizes, boxes, masks, extra = [], [], [], [], [], []
    seen: set[str] = set()
    for record in records:
        if record.image_id in seen:
            raise DatasetFormatError(f"{split_dir}: duplicate image id {record.image_id!r}")
        if "," in record.image_id or "\n" in record.image_id:
            raise DatasetFormatError(f"{split_dir}: image id {record.image_id!r} contains ',' or a newline")
        seen.add(record.image_id)
        ids.append(record.image_id)
        labels.append(f"{record.image_id},{record.label}")
        sizes.append(f"{record.image_id},{record.width},{record.height}")
        boxes.extend(f"{record.image_id}," + ",".join(_format_number(v) for v in box) for box in record.boxes)
        extra.extend(
            f"{record.image_id},{kind}," + ",".join(_format_number(v) for v in box)
            for kind, box in record.extra_boxes
        )
        for index, mask_path in enumerate(record.mask_paths):
            ignore = record.ignore_path if (index == 0 and record.ignore_path) else ""
            masks.append(f"{record.image_id},{mask_path},{ignore}")
    files = {
        "image_ids.txt": ids,
        "class_labels.txt": labels,
        "image_sizes.txt": sizes,
        "localization.txt": boxes,
        "masks.txt": masks,
        "extra_boxes.txt": extra,
    }
    for name, lines in files.items():
        if lines or name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt"):
            (split_dir / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_dataset(root: Path, info: DatasetInfo, splits: Mapping[str, Sequence[ImageRecord]]) -> None:
    """Write ``dataset.json``, ``classes.txt`` and every split's metadata under ``root``.

    Call it inside :func:`wsol.io.atomic_directory` so that a failure leaves no half-written dataset.
    """
    root = Path(root)
    info.splits = list(splits)
    for split, records in splits.items():
        for record in records:
            if not 0 <= record.label < info.num_classes:
                raise DatasetFormatError(
                    f"split {split!r}: label {record.label} of {record.image_id!r} "
                    f"outside 0..{info.num_classes - 1}"
                )
            if record.label in info.no_object_classes and (record.has_mask or record.boxes):
                raise DatasetFormatError(
                    f"split {split!r}: {record.image_id!r} has a mask or boxes but its class "
                    f"{record.label} is a no-object class"
                )
        write_split_metadata(root / METADATA_DIR / split, records)
    payload = {
        "format_version": FORMAT_VERSION,
        "name": info.name,
        "num_classes": info.num_classes,
        "splits": info.splits,
        "image_root": info.image_root,
        "mask_root": info.mask_root,
        "extra": info.extra,
        "no_object_classes": sorted(info.no_object_classes),
    }
    (root / DATASET_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if info.class_names:
        if len(info.class_names) != info.num_classes:
            raise DatasetFormatError(
                f"{root / CLASSES_FILE}: {len(info.class_names)} class names for {info.num_classes} classes"
            )
        lines = "".join(f"{index},{name}\n" for index, name in enumerate(info.class_names))
        (root / CLASSES_FILE).write_text(lines, encoding="utf-8")


def read_dataset_info(root: Path) -> DatasetInfo:
    """Read ``dataset.json`` and the optional ``classes.txt``."""
    root = Path(root)
    path = root / DATASET_FILE
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found; is {root} a dataset written by `wsol data`?")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
    for key in ("name", "num_classes", "splits"):
        if key not in payload:
            raise DatasetFormatError(f"{path}: missing key {key!r}")
    if payload.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path}: format version {payload['format_version']} is newer than "
            f"this library's {FORMAT_VERSION}"
        )
    class_names: list[str] = []
    classes_path = root / CLASSES_FILE
    if classes_path.is_file():
        for position, (lineno, line) in enumerate(_numbered_lines(classes_path)):
            index_text, _, name = line.partition(",")
            index = int(_to_number(classes_path, lineno, index_text.strip(), int))
            if index != position:
                raise DatasetFormatError(f"{classes_path}:{lineno}: expected index {position}, got {index}")
            class_names.append(name.strip())
    return DatasetInfo(
        name=str(payload["name"]),
        num_classes=int(payload["num_classes"]),
        splits=list(payload["splits"]),
        image_root=str(payload.get("image_root", "images")),
        mask_root=str(payload.get("mask_root", "masks")),
        class_names=class_names,
        extra=dict(payload.get("extra", {})),
        no_object_classes=[int(c) for c in payload.get("no_object_classes", [])],
    )


def read_split(root: Path, split: str) -> list[ImageRecord]:
    """Records of ``split`` of the dataset at ``root``, validated against its number of classes."""
    info = read_dataset_info(root)
    if split not in info.splits:
        raise DatasetFormatError(f"{Path(root) / DATASET_FILE}: no split {split!r} (have {info.splits})")
    return read_split_metadata(Path(root) / METADATA_DIR / split, num_classes=info.num_classes)
