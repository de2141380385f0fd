"""Decode once: an on-disk cache of a split's images and masks at the resolution the transform resizes to.

The first use of a split decodes every image (and its masks), applies the transform's deterministic resize
step (:meth:`~wsol.data.transforms.JointTransform.resize`) and stores the result as uint8 arrays in one folder
(``images.npy``: the RGB pixels of all images back to back; ``planes.npy``: foreground in bit 0, ignore in
bit 1; ``index.npy``: offset, height, width, has-mask per image; ``boxes.npy`` + ``box_index.npy``), read
back memory-mapped by every epoch, every loader worker and every later run. Random augmentations still run
per sample on top. A resized image is rounded to uint8 (at most half a grey level from the uncached path);
without a resize the pixels are the decoded ones exactly.

The folder name is a hash of the dataset's absolute path, the split, the resize settings and a fingerprint
of the sources (the split's metadata files, and size and modification time of every image and mask file):
editing, replacing or re-importing any of them gives a new key, and the stale folder of the same dataset,
split and resize settings is removed when the new one is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

if TYPE_CHECKING:
    from wsol.data.dataset import WSOLDataset

CACHE_VERSION = 1
FOREGROUND_BIT, IGNORE_BIT = 1, 2


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def source_fingerprint(dataset: WSOLDataset) -> str:
    """Hash of the split's metadata bytes and of (size, mtime) of every image and mask file it lists."""
    digest = hashlib.sha256()
    metadata = sorted((dataset.root / "metadata" / dataset.split).glob("*.txt"))
    for path in [*metadata, dataset.root / "dataset.json"]:
        digest.update(path.name.encode() + path.read_bytes())
    for record in dataset.records:
        files = [dataset.image_root / record.image_id]
        if dataset.load_masks:
            names = (*record.mask_paths, record.ignore_path or "")
            files += [dataset.mask_root / name for name in names if name]
        for path in files:
            stat = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
            digest.update(f"{path}|{stat}".encode())
    return digest.hexdigest()[:16]


def cache_folder(dataset: WSOLDataset, cache_dir: Path) -> tuple[Path, str]:
    """``(folder, prefix)``: where ``dataset``'s cache lives, and the name prefix its stale versions share."""
    settings = {
        "version": CACHE_VERSION,
        "root": str(dataset.root.resolve()),
        "split": dataset.split,
        "masks": dataset.load_masks,
        "resize": dataset.transform.resize_policy(),
    }
    prefix = f"{dataset.info.name}-{dataset.split}-{_digest(settings)}-"
    return Path(cache_dir) / "decoded" / f"{prefix}{source_fingerprint(dataset)}", prefix


@dataclass(frozen=True)
class DecodedSplit:
    """The memory-mapped arrays of one cached split."""

    images: np.ndarray
    planes: np.ndarray
    index: np.ndarray
    boxes: np.ndarray
    box_index: np.ndarray

    @classmethod
    def open(cls, folder: Path) -> DecodedSplit:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in cls.__dataclass_fields__}
        return cls(**arrays)

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """``(image (3, H, W) in [0, 1], mask (1, H, W) float or None, ignore (1, H, W) bool, boxes)``."""
        offset, height, width, has_mask = (int(v) for v in self.index[index])
        pixels = np.array(self.images[3 * offset : 3 * (offset + height * width)]).reshape(height, width, 3)
        planes = np.array(self.planes[offset : offset + height * width]).reshape(1, height, width)
        image = torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)
        mask = torch.from_numpy((planes & FOREGROUND_BIT) > 0).float() if has_mask else None
        ignore = torch.from_numpy((planes & IGNORE_BIT) > 0)
        start, end = int(self.box_index[index]), int(self.box_index[index + 1])
        return image, mask, ignore, torch.from_numpy(np.array(self.boxes[start:end], np.float32))


def _write(dataset: WSOLDataset, tmp: Path, progress: bool) -> None:
    images, planes, index, boxes, counts = [], [], [], [], [0]
    offset = 0
    for i in tqdm(range(len(dataset)), desc=f"decode {dataset.split} once", disable=not progress):
        image, mask, ignore, box = dataset.resized_arrays(i)
        height, width = image.shape[-2:]
        images.append((image.permute(1, 2, 0) * 255).round_().to(torch.uint8).numpy().reshape(-1))
        plane = np.zeros((height, width), np.uint8)
        if mask is not None:
            plane |= (mask[0].numpy() > 0.5).astype(np.uint8) * FOREGROUND_BIT
        plane |= ignore[0].numpy().astype(np.uint8) * IGNORE_BIT
        planes.append(plane.reshape(-1))
        index.append((offset, height, width, int(mask is not None)))
        boxes.append(box.numpy().reshape(-1, 4))
        counts.append(counts[-1] + len(box))
        offset += height * width
    np.save(tmp / "images.npy", np.concatenate(images))
    np.save(tmp / "planes.npy", np.concatenate(planes))
    np.save(tmp / "index.npy", np.asarray(index, np.int64).reshape(-1, 4))
    np.save(tmp / "boxes.npy", np.concatenate(boxes).astype(np.float32).reshape(-1, 4))
    np.save(tmp / "box_index.npy", np.asarray(counts, np.int64))


def open_cache(dataset: WSOLDataset, cache_dir: Path, *, progress: bool = False) -> DecodedSplit:
    """The cache of ``dataset`` (its split, transform and sources), built first if missing or stale."""
    folder, prefix = cache_folder(dataset, cache_dir)
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            _write(dataset, tmp, progress)
            os.rename(tmp, folder)  # atomic; fails if another process (a DDP rank) wrote it first
        except OSError:
            if not folder.is_dir():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for stale in folder.parent.glob(f"{prefix}*"):
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
    return DecodedSplit.open(folder)
