"""Any folder of classes: ``ROOT/<class>/<image>``, with optional masks in a sibling ``ROOT_masks`` folder.

Layout::

    ROOT/<class>/*.{jpg,jpeg,png,bmp,tif,tiff,webp,ppm,pgm}
    ROOT_masks/<class>/<image stem>.png          optional, one mask per image

Classes are the sub-folder names in sorted order (hidden folders are ignored). A mask whose values are all 0/1
is foreground where 1; any other mask is foreground where the value is >= 128 (half of the 8-bit range).
There is no official split: a seeded stratified 70 / 10 / 20 % train / val / test split is drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsol.data.images import mask_fraction, read_mask
from wsol.data.importers.base import (
    IMAGE_EXTENSIONS,
    TEST,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
)
from wsol.data.splits import stratified_split

HELD_OUT = ((TEST, 0.2), (VALID, 0.1))


def read_user_mask(path: Path) -> np.ndarray:
    """0/1 masks: foreground = 1; otherwise foreground = at least half the full scale (128 of 255 for 8 bits,
    32768 of 65535 for 16 bits, 0.5 for float masks)."""
    labels = read_mask(path)
    if float(labels.max(initial=0)) <= 1 and np.issubdtype(labels.dtype, np.integer):
        return (labels > 0).astype(np.uint8)
    return (mask_fraction(labels) >= 0.5).astype(np.uint8)


class FolderImporter(Importer):
    """A folder of class sub-folders with optional masks; seeded 70 / 10 / 20 % split."""

    name = "folder"
    citation = "a user folder of class sub-folders"

    def scan(self) -> SourceScan:
        class_dirs = sorted(
            entry for entry in self.src.iterdir() if entry.is_dir() and not entry.name.startswith(".")
        )
        warnings: list[str] = []
        files_by_class: list[tuple[str, list[Path]]] = []
        for class_dir in class_dirs:
            files = sorted(
                entry
                for entry in class_dir.iterdir()
                if entry.is_file()
                and entry.suffix.lower() in IMAGE_EXTENSIONS
                and not entry.name.startswith(".")
            )
            if files:
                files_by_class.append((class_dir.name, files))
            else:
                warnings.append(f"{class_dir}: no image files ({', '.join(IMAGE_EXTENSIONS)}); not a class")
        if not files_by_class:
            raise SourceLayoutError(
                f"folder: {self.src} has no class sub-folder with images; expected ROOT/<class>/<image> "
                f"with extensions {', '.join(IMAGE_EXTENSIONS)}"
            )
        if any("," in name for name, _ in files_by_class):
            raise SourceLayoutError(f"folder: a class folder name under {self.src} contains ','")
        mask_root = self.src.parent / f"{self.src.name}_masks"
        if not mask_root.is_dir():
            warnings.append(f"{mask_root} not found: no masks")
        by_class: dict[int, list[str]] = {}
        entries: list[tuple[Path, str, int]] = []
        for label, (class_name, files) in enumerate(files_by_class):
            for path in files:
                image_id = f"{class_name}/{path.name}"
                by_class.setdefault(label, []).append(image_id)
                entries.append((path, image_id, label))
        assignment = stratified_split(by_class, HELD_OUT, seed=self.split_seed)
        images = []
        for path, image_id, label in entries:
            masks: tuple[MaskSource, ...] = ()
            if mask_root.is_dir():
                mask_name = f"{Path(image_id).parent.as_posix()}/{path.stem}.png"
                if (mask_root / mask_name).is_file():
                    masks = (MaskSource(mask_root / mask_name, read_user_mask, mask_name),)
                else:
                    warnings.append(f"{mask_root / mask_name}: not found; {image_id} kept without mask")
            images.append(SourceImage(path, image_id, label, assignment[image_id], masks=masks))
        return SourceScan(
            image_root=self.src,
            class_names=[name for name, _ in files_by_class],
            images=images,
            extra={"split_policy": f"seeded stratified 70/10/20 train/val/test, seed {self.split_seed}"},
            warnings=warnings,
        )
