"""Oxford Flowers 102.

Nilsback & Zisserman, "Automated Flower Classification over a Large Number of Classes", ICVGIP 2008.
Official layout (the image, label, split and segmentation archives extracted into one folder)::

    jpg/image_NNNNN.jpg        8,189 images, NNNNN 1-based on 5 digits
    imagelabels.mat            ``labels``: 1 x 8189, classes 1..102
    setid.mat                  ``trnid``, ``valid``, ``tstid``: 1-based image numbers (1,020 / 1,020 / 6,149)
    segmim/segmim_NNNNN.jpg    optional: the image with its background painted pure blue (0, 0, 254)

Labels are stored 0-based; the files carry no class names, so class ``k`` is named ``"k"`` (1-based, as in the
source). Foreground = pixels farther than ``BLUE_TOLERANCE`` (per channel) from the blue background, which
absorbs JPEG noise (the min-max entropy paper's R1 builds its OxF masks by subtracting the pure blue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from wsol.data.images import read_image
from wsol.data.importers.base import (
    TEST,
    TRAIN,
    VALID,
    Importer,
    MaskSource,
    SourceImage,
    SourceLayoutError,
    SourceScan,
)

BACKGROUND_RGB = (0, 0, 254)
BLUE_TOLERANCE = 60
SPLIT_KEYS = {"trnid": TRAIN, "valid": VALID, "tstid": TEST}


def read_segmim(path: Path) -> np.ndarray:
    """Foreground (1) wherever a ``segmim`` pixel is not the blue background within ``BLUE_TOLERANCE``."""
    rgb = read_image(path).astype(np.int16)
    distance = np.abs(rgb - np.asarray(BACKGROUND_RGB, dtype=np.int16)).max(axis=-1)
    return (distance > BLUE_TOLERANCE).astype(np.uint8)


def _load_vector(path: Path, key: str) -> np.ndarray:
    try:
        content = scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError) as err:
        raise SourceLayoutError(f"oxford_flowers: {path} is not a readable MATLAB file ({err})") from err
    if key not in content:
        found = sorted(name for name in content if not name.startswith("__"))
        raise SourceLayoutError(f"oxford_flowers: {path} has no variable {key!r} (found {found})")
    values = np.asarray(content[key]).ravel()
    if values.size == 0 or not np.issubdtype(values.dtype, np.number) or (values != np.round(values)).any():
        raise SourceLayoutError(f"oxford_flowers: {path}: {key!r} must be a non-empty vector of integers")
    return values.astype(np.int64)


class OxfordFlowersImporter(Importer):
    """Oxford Flowers 102: official splits, masks from the blue-background segmentations."""

    name = "oxford_flowers"
    citation = (
        "M.-E. Nilsback, A. Zisserman, Automated Flower Classification over a Large Number of Classes, "
        "ICVGIP 2008."
    )

    def scan(self) -> SourceScan:
        image_dir = self.require("jpg", kind="folder")
        labels = _load_vector(self.require("imagelabels.mat"), "labels")
        setid_path = self.require("setid.mat")
        if labels.min() < 1:
            raise SourceLayoutError(f"oxford_flowers: {self.src / 'imagelabels.mat'}: labels must be 1-based")
        num_classes = int(labels.max())
        split_of: dict[int, str] = {}
        for key, split in SPLIT_KEYS.items():
            for number in _load_vector(setid_path, key).tolist():
                if not 1 <= number <= labels.size:
                    raise SourceLayoutError(
                        f"oxford_flowers: {setid_path}: {key} lists image {number}, outside 1..{labels.size}"
                    )
                if number in split_of:
                    raise SourceLayoutError(
                        f"oxford_flowers: {setid_path}: image {number} is in both {split_of[number]} "
                        f"and {split}"
                    )
                split_of[number] = split
        seg_dir = self.src / "segmim"
        warnings = [] if seg_dir.is_dir() else [f"{seg_dir} not found: no masks"]
        images = []
        for number in sorted(split_of):
            stem = f"{number:05d}"
            masks: tuple[MaskSource, ...] = ()
            if seg_dir.is_dir():
                mask_path = seg_dir / f"segmim_{stem}.jpg"
                if mask_path.is_file():
                    masks = (MaskSource(mask_path, read_segmim, f"image_{stem}.png"),)
                else:
                    warnings.append(f"{mask_path}: not found; image kept without mask")
            images.append(
                SourceImage(
                    path=image_dir / f"image_{stem}.jpg",
                    image_id=f"image_{stem}.jpg",
                    label=int(labels[number - 1]) - 1,
                    split=split_of[number],
                    masks=masks,
                )
            )
        return SourceScan(
            image_root=image_dir,
            class_names=[str(k) for k in range(1, num_classes + 1)],
            images=images,
            extra={"split_policy": "official setid.mat (trnid/valid/tstid)", "citation": self.citation},
            warnings=warnings,
        )
