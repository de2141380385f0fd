"""Validation and summary of a dataset in the library's format (``wsol data check DIR``).

Every problem is collected (not raised) so that one run lists them all: metadata errors (from
:mod:`wsol.data.format`), image ids shared by two splits, images or masks that are missing or do not decode,
and sizes that disagree with ``image_sizes.txt``. The summary gives counts per split and class, the mask
coverage (foreground fraction of the image), box areas and the image size range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from wsol.data.format import DatasetFormatError, DatasetInfo, ImageRecord, read_dataset_info, read_split
from wsol.data.images import read_mask
from wsol.data.importers.base import probe_image
from wsol.data.splits import split_overlaps

MAX_LISTED_PROBLEMS = 20


@dataclass
class SplitSummary:
    """Figures of one split."""

    name: str
    per_class: list[int]
    with_mask: int = 0
    with_boxes: int = 0
    coverage: list[float] = field(default_factory=list)
    box_areas: list[float] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(self.per_class)


@dataclass
class CheckReport:
    """Outcome of :func:`check_dataset`; ``ok`` when no problem was found."""

    root: Path
    info: DatasetInfo
    splits: list[SplitSummary]
    problems: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "name": self.info.name,
            "num_classes": self.info.num_classes,
            "class_names": list(self.info.class_names),
            "splits": {
                s.name: {
                    "images": s.images,
                    "per_class": list(s.per_class),
                    "with_mask": s.with_mask,
                    "with_boxes": s.with_boxes,
                    "coverage": _stats(s.coverage),
                    "box_area": _stats(s.box_areas),
                    "width": [min(s.widths), max(s.widths)] if s.widths else None,
                    "height": [min(s.heights), max(s.heights)] if s.heights else None,
                }
                for s in self.splits
            },
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }

    def format(self) -> str:
        info = self.info
        lines = [
            f"dataset {info.name!r} at {self.root}",
            f"{info.num_classes} classes, splits {', '.join(info.splits)}",
            f"image root {info.resolve_image_root(self.root)}",
            *(
                [f"no-object classes (no mask or box; classified only): {info.no_object_classes}"]
                if info.no_object_classes
                else []
            ),
            "",
            f"{'split':<8}{'images':>8}{'masks':>8}{'boxed':>8}   width range   height range",
        ]
        for s in self.splits:
            width = f"{min(s.widths)}..{max(s.widths)}" if s.widths else "-"
            height = f"{min(s.heights)}..{max(s.heights)}" if s.heights else "-"
            lines.append(f"{s.name:<8}{s.images:>8}{s.with_mask:>8}{s.with_boxes:>8}   {width:<13} {height}")
        names = info.class_names or [str(k) for k in range(info.num_classes)]
        label_width = max(12, *(len(f"{k} {name}") + 2 for k, name in enumerate(names)))
        lines += [
            "",
            "images per class:",
            f"{'class':<{label_width}}" + "".join(f"{s.name:>8}" for s in self.splits),
        ]
        for k, name in enumerate(names):
            counts = "".join(f"{s.per_class[k]:>8}" for s in self.splits)
            lines.append(f"{f'{k} {name}':<{label_width}}{counts}")
        for title, attribute in (
            ("mask coverage (foreground fraction of the image)", "coverage"),
            ("box area (fraction of the image, per box)", "box_areas"),
        ):
            rows = [(s.name, getattr(s, attribute)) for s in self.splits if getattr(s, attribute)]
            if not rows:
                continue
            lines += ["", f"{title}:", f"{'split':<8}{'n':>7}{'mean':>8}{'min':>8}{'median':>8}{'max':>8}"]
            for name, values in rows:
                st = _stats(values)
                lines.append(
                    f"{name:<8}{st['n']:>7}{st['mean']:>8.3f}{st['min']:>8.3f}{st['median']:>8.3f}{st['max']:>8.3f}"
                )
        lines.append("")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {problem}" for problem in self.problems[:MAX_LISTED_PROBLEMS]]
            if len(self.problems) > MAX_LISTED_PROBLEMS:
                lines.append(f"  ... and {len(self.problems) - MAX_LISTED_PROBLEMS} more")
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "min": float(array.min()),
        "median": float(np.median(array)),
        "max": float(array.max()),
    }


def _read_mask(path: Path, record: ImageRecord, problems: list[str]) -> np.ndarray | None:
    if not path.is_file():
        problems.append(f"{path}: mask of {record.image_id!r} not found")
        return None
    try:
        labels = read_mask(path)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        problems.append(f"{path}: mask of {record.image_id!r} does not decode ({err})")
        return None
    if labels.shape != (record.height, record.width):
        problems.append(
            f"{path}: mask is {labels.shape[1]}x{labels.shape[0]} but image {record.image_id!r} is "
            f"{record.width}x{record.height}"
        )
        return None
    return labels > 0


def _check_record(
    record: ImageRecord,
    image_root: Path,
    mask_root: Path,
    summary: SplitSummary,
    decode: bool,
    problems: list[str],
) -> None:
    path = image_root / record.image_id
    try:
        size = probe_image(path, full_decode=decode)
    except FileNotFoundError:
        problems.append(f"{path}: image {record.image_id!r} not found")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        problems.append(f"{path}: image {record.image_id!r} does not decode ({err})")
    else:
        if size != (record.width, record.height):
            problems.append(
                f"{path}: image is {size[0]}x{size[1]} but image_sizes.txt says "
                f"{record.width}x{record.height}"
            )
    summary.widths.append(record.width)
    summary.heights.append(record.height)
    if record.boxes:
        summary.with_boxes += 1
        area = record.width * record.height
        summary.box_areas += [(x1 - x0) * (y1 - y0) / area for x0, y0, x1, y1 in record.boxes]
    if record.has_mask:
        summary.with_mask += 1
        union = np.zeros((record.height, record.width), dtype=bool)
        complete = True
        for mask_path in record.mask_paths:
            foreground = _read_mask(mask_root / mask_path, record, problems)
            if foreground is None:
                complete = False
            else:
                union |= foreground
        if record.ignore_path:
            complete = _read_mask(mask_root / record.ignore_path, record, problems) is not None and complete
        if complete:
            summary.coverage.append(float(union.mean()))


def check_dataset(root: Path, *, decode: bool = False, progress: bool = False) -> CheckReport:
    """Validate the dataset at ``root`` and gather its summary.

    ``decode`` decodes every image fully (by default only headers are read). Raises
    :class:`DatasetFormatError` only when ``dataset.json`` is unusable; every other problem is collected.
    """
    root = Path(root)
    info = read_dataset_info(root)
    image_root, mask_root = info.resolve_image_root(root), info.resolve_mask_root(root)
    problems: list[str] = []
    warnings: list[str] = []
    if not image_root.is_dir():
        problems.append(f"{image_root}: image root not found (dataset.json image_root={info.image_root!r})")
    splits: list[SplitSummary] = []
    records_by_split: dict[str, list[ImageRecord]] = {}
    for split in info.splits:
        try:
            records = read_split(root, split)
        except DatasetFormatError as err:
            problems.append(str(err))
            continue
        summary = SplitSummary(split, per_class=[0] * info.num_classes)
        for record in tqdm(records, desc=f"check {split}", unit="img", disable=not progress):
            summary.per_class[record.label] += 1
            _check_record(record, image_root, mask_root, summary, decode, problems)
        empty = [k for k, count in enumerate(summary.per_class) if count == 0]
        if empty:
            warnings.append(
                f"split {split!r} has no image of class(es) {empty[:10]}{' ...' if len(empty) > 10 else ''}"
            )
        splits.append(summary)
        records_by_split[split] = records
    for image_id, first, other in split_overlaps(records_by_split):
        problems.append(f"image {image_id!r} is in both split {first!r} and split {other!r}")
    return CheckReport(root=root, info=info, splits=splits, problems=problems, warnings=warnings)
