"""Tiny ImageNet-200 (CS231n, Stanford): 200 ILSVRC classes at 64 × 64 px, one box per image.

Le & Yang, "Tiny ImageNet Visual Recognition Challenge", CS231N 2015. Official layout (``--src`` is the
``tiny-imagenet-200`` folder)::

    wnids.txt                                   the 200 class ids, one per line (label = line order)
    words.txt                                   "wnid<TAB>names" for every ImageNet synset (82,115 lines)
    train/<wnid>/images/<wnid>_<n>.JPEG         500 per class (some greyscale)
    train/<wnid>/<wnid>_boxes.txt               "<file><TAB>x0<TAB>y0<TAB>x1<TAB>y1"
    val/images/val_<n>.JPEG                     10,000 images
    val/val_annotations.txt                     "<file><TAB><wnid><TAB>x0<TAB>y0<TAB>x1<TAB>y1"
    test/images/test_<n>.JPEG                   unlabelled: not imported

Box corners are inclusive pixel indices (``x1 = 63`` reaches the last column) and become continuous pixels
``x0, y0, x1 + 1, y1 + 1``. Splits: the official val (labelled) is our test, as in the learned-weight-map
paper (Shaharabany & Wolf); val = ``ceil(10 %)`` of each class of train (seeded), the rest train.
"""

from __future__ import annotations

from pathlib import Path

from wsol.data.format import Box
from wsol.data.importers.base import TEST, VALID, Importer, SourceImage, SourceLayoutError, SourceScan
from wsol.data.splits import stratified_split


def _box(path: Path, lineno: int, cells: list[str]) -> Box:
    try:
        x0, y0, x1, y1 = (float(cell) for cell in cells)
    except ValueError as err:
        raise SourceLayoutError(f"tiny_imagenet: {path}:{lineno}: box {cells} is not 4 numbers") from err
    return (x0, y0, x1 + 1, y1 + 1)


def read_boxes(path: Path, columns: int) -> dict[str, tuple[list[str], Box]]:
    """``{file: (leading cells, box)}`` of a tab-separated box file with ``columns`` columns."""
    rows: dict[str, tuple[list[str], Box]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != columns:
            raise SourceLayoutError(
                f"tiny_imagenet: {path}:{lineno}: expected {columns} tab-separated fields, got {line!r}"
            )
        rows[cells[0]] = (cells[1:-4], _box(path, lineno, cells[-4:]))
    return rows


class TinyImageNetImporter(Importer):
    """Tiny ImageNet-200: train and val with one box per image (test is unlabelled)."""

    name = "tiny_imagenet"
    citation = "Y. Le, X. Yang, Tiny ImageNet Visual Recognition Challenge, CS231N, Stanford, 2015."
    full_decode = False

    def _class_names(self, wnids: list[str]) -> list[str]:
        words: dict[str, str] = {}
        path = self.src / "words.txt"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                wnid, _, names = line.partition("\t")
                words[wnid] = names.split(",")[0].strip()
        return [words.get(wnid, wnid) for wnid in wnids]

    def scan(self) -> SourceScan:
        wnids = [line.strip() for line in self.require("wnids.txt").read_text().splitlines() if line.strip()]
        if len(set(wnids)) != len(wnids):
            raise SourceLayoutError(f"tiny_imagenet: {self.src / 'wnids.txt'} lists a wnid twice")
        label_of = {wnid: label for label, wnid in enumerate(wnids)}
        items: dict[str, tuple[Path, int, Box]] = {}
        for wnid in wnids:
            boxes = read_boxes(self.require(f"train/{wnid}/{wnid}_boxes.txt"), 5)
            for file, (_, box) in boxes.items():
                items[f"train/{wnid}/images/{file}"] = (
                    self.src / "train" / wnid / "images" / file,
                    label_of[wnid],
                    box,
                )
        by_class: dict[int, list[str]] = {}
        for image_id, (_, label, _) in items.items():
            by_class.setdefault(label, []).append(image_id)
        assignment = stratified_split(by_class, [(VALID, 0.1)], seed=self.split_seed)
        val_path = self.require("val/val_annotations.txt")
        for file, ([wnid], box) in read_boxes(val_path, 6).items():
            if wnid not in label_of:
                raise SourceLayoutError(
                    f"tiny_imagenet: {val_path}: {file} has wnid {wnid!r}, not in wnids.txt"
                )
            items[f"val/images/{file}"] = (self.src / "val" / "images" / file, label_of[wnid], box)
            assignment[f"val/images/{file}"] = TEST
        images = [
            SourceImage(path=path, image_id=image_id, label=label, split=assignment[image_id], boxes=(box,))
            for image_id, (path, label, box) in sorted(items.items())
        ]
        return SourceScan(
            image_root=self.src,
            class_names=self._class_names(wnids),
            images=images,
            extra={
                "split_policy": "test = official val; val = ceil(10 %) of each class of train, "
                f"seed {self.split_seed}",
                "wnids": wnids,
                "citation": self.citation,
            },
        )
