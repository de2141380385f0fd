"""``WSOLDataset``: one split of a dataset in the format of :mod:`wsol.data.format`, and its collate.

A sample is a dict with the batch keys of ``docs/architecture.md`` (unbatched): ``image`` (3, H, W)
normalised, ``label``, ``mask`` (1, H, W) in {0, 1}, ``ignore`` (1, H, W) bool, ``has_mask``, ``has_object``
(False for the images of a no-object class), ``boxes`` (N, 4) xyxy in the transformed image's pixels,
``image_id`` and ``orig_size`` (height, width).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from wsol.data.format import METADATA_DIR, DatasetFormatError, ImageRecord, read_dataset_info, read_split
from wsol.data.images import draft_scale, max_image_pixels, read_image, read_mask
from wsol.data.transforms import JointTransform, build_transforms

if TYPE_CHECKING:
    from wsol.data.cache import DecodedSplit


def boxes_from_mask(mask: np.ndarray) -> np.ndarray:
    """Tight boxes (N, 4) float32 ``x0, y0, x1, y1`` of a mask (continuous pixels: ``x1`` = last column + 1).

    An instance-labelled mask (several distinct values > 0) gives one box per id; a binary mask gives one box
    per 8-connected component (so that a GlaS-like mask of several glands gives one box per gland).
    """
    ids = np.unique(mask)
    ids = ids[ids > 0]
    if ids.size == 0:
        return np.zeros((0, 4), np.float32)
    if ids.size == 1:
        count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
        x, y, w, h = (stats[1:, i].astype(np.float32) for i in range(4))
        return np.stack([x, y, x + w, y + h], axis=1)
    boxes = []
    for value in ids:
        ys, xs = np.nonzero(mask == value)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    return np.asarray(boxes, np.float32)


def _resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` resized to ``size`` = (width, height) by nearest neighbour, keeping its values."""
    dtype = np.uint16 if mask.dtype == np.uint16 else np.float32
    return cv2.resize(mask.astype(dtype), size, interpolation=cv2.INTER_NEAREST).astype(mask.dtype)


class WSOLDataset(Dataset):
    """One split of a WSOL dataset; ``transform`` is a :class:`~wsol.data.transforms.JointTransform`.

    Random augmentations of sample ``i`` are seeded from ``(seed, epoch, i)``: call :meth:`set_epoch` at each
    epoch (as with ``DistributedSampler``) for new draws; results do not depend on the number of workers.
    Boxes come from the metadata; when a record has masks but no boxes they are derived from the masks
    (:func:`boxes_from_mask`), which needs ``load_masks=True``.
    """

    def __init__(
        self,
        root: Path | str,
        split: str,
        transform: JointTransform | None = None,
        load_masks: bool = True,
        *,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.info = read_dataset_info(self.root)
        self.records: list[ImageRecord] = read_split(self.root, split)
        self.image_root = self.info.resolve_image_root(self.root)
        self.mask_root = self.info.resolve_mask_root(self.root)
        self.transform = transform if transform is not None else build_transforms(None, train=False)
        self.load_masks = load_masks
        self.seed = seed
        self.epoch = 0
        self._ids_file = self.root / METADATA_DIR / split / "image_ids.txt"
        self._cache: DecodedSplit | None = None

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def sample_seed(self, index: int) -> int:
        """The augmentation seed of sample ``index`` at the current epoch."""
        return int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])

    def _where(self, record: ImageRecord) -> str:
        return f"{self._ids_file} for image id {record.image_id!r}"

    @staticmethod
    def _reduced_on_decode(record: ImageRecord, decoded: tuple[int, int]) -> bool:
        """Whether a JPEG over the pixel budget was decoded at a reduced scale (``wsol.data.images``)."""
        over_budget = record.width * record.height > max_image_pixels()
        return over_budget and draft_scale((record.width, record.height), decoded) is not None

    def load_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
        """Untransformed ``(image HxWx3 uint8, foreground HxW bool|None, ignore HxW bool|None, boxes)``."""
        record = self.records[index]
        where = self._where(record)
        image_path = self.image_root / record.image_id
        image = read_image(image_path, where=where)
        height, width = image.shape[:2]
        reduced = (width, height) != (record.width, record.height)
        if reduced and not self._reduced_on_decode(record, (width, height)):
            raise DatasetFormatError(
                f"{image_path}: decoded size {width}x{height} differs from the "
                f"{record.width}x{record.height} given in {self._ids_file.parent / 'image_sizes.txt'}"
            )
        foreground = ignore = None
        derived: list[np.ndarray] = []
        if self.load_masks and record.has_mask:
            foreground = np.zeros((height, width), bool)
            for mask_path in record.mask_paths:
                path = self.mask_root / mask_path
                mask = read_mask(path, where=where)
                if mask.shape != (record.height, record.width):
                    raise DatasetFormatError(
                        f"{path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from the image size "
                        f"{record.width}x{record.height} of {image_path} (listed at {where})"
                    )
                mask = _resize_nearest(mask, (width, height)) if reduced else mask
                foreground |= mask > 0
                if not record.boxes:
                    derived.append(boxes_from_mask(mask))
            ignore = np.zeros((height, width), bool)
            if record.ignore_path:
                path = self.mask_root / record.ignore_path
                ignore_map = read_mask(path, where=where)
                if ignore_map.shape != (record.height, record.width):
                    raise DatasetFormatError(
                        f"{path}: ignore mask size {ignore_map.shape[1]}x{ignore_map.shape[0]} differs "
                        f"from the image size {record.width}x{record.height} of {image_path} "
                        f"(listed at {where})"
                    )
                ignore_map = _resize_nearest(ignore_map, (width, height)) if reduced else ignore_map
                # wsolevaluation: ignore := ignore box region and not foreground.
                ignore = (ignore_map > 0) & ~foreground
        if record.boxes:
            scale = np.array([width / record.width, height / record.height] * 2, np.float32)
            boxes = np.asarray(record.boxes, np.float32).reshape(-1, 4) * scale
        elif derived:
            boxes = np.concatenate(derived)
        else:
            boxes = np.zeros((0, 4), np.float32)
        return image, foreground, ignore, boxes

    def _tensors(self, index: int) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """Untransformed ``(image (3, H, W) in [0, 1], mask (1, H, W) or None, ignore (1, H, W), boxes)``."""
        image, foreground, ignore, boxes = self.load_arrays(index)
        height, width = image.shape[:2]
        image_t = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        mask_t = torch.from_numpy(foreground)[None].float() if foreground is not None else None
        if ignore is not None:
            ignore_t = torch.from_numpy(ignore)[None]
        else:
            ignore_t = torch.zeros(1, height, width, dtype=torch.bool)
        return image_t, mask_t, ignore_t, torch.from_numpy(boxes)

    def resized_arrays(self, index: int) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """:meth:`_tensors` after the transform's deterministic resize step (what the decoded cache holds)."""
        image, mask, ignore, boxes = self._tensors(index)
        blank = torch.zeros(1, *image.shape[-2:]) if mask is None else mask
        image, resized_mask, ignore, boxes = self.transform.resize((image, blank, ignore, boxes.float()))
        return image, (resized_mask if mask is not None else None), ignore, boxes

    def use_cache(self, cache_dir: Path | str, *, progress: bool = False) -> WSOLDataset:
        """Read samples from the decoded cache under ``cache_dir``, built if missing (``wsol.data.cache``)."""
        from wsol.data.cache import open_cache

        self._cache = open_cache(self, Path(cache_dir), progress=progress)
        return self

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        height, width = record.height, record.width
        image_t, mask_t, ignore_t, boxes_t = (
            self._cache.sample(index) if self._cache is not None else self._tensors(index)
        )
        has_mask = mask_t is not None
        if mask_t is None:
            mask_t = torch.zeros(1, *image_t.shape[-2:])
        try:
            image_t, mask_t, ignore_t, boxes_t = self.transform(
                image_t, mask_t, ignore_t, boxes_t, seed=self.sample_seed(index)
            )
        except ValueError as err:
            raise ValueError(f"{self.image_root / record.image_id}: {err}") from err
        return {
            "image": image_t,
            "label": record.label,
            "mask": mask_t,
            "ignore": ignore_t,
            "has_mask": has_mask,
            "has_object": record.label not in self.info.no_object_classes,
            "boxes": boxes_t,
            "image_id": record.image_id,
            "orig_size": (height, width),
        }


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples of :class:`WSOLDataset` into the batch dict of ``docs/architecture.md``."""
    if not samples:
        raise ValueError("collate: empty list of samples")
    shapes = {tuple(sample["image"].shape) for sample in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"collate: images of different sizes {sorted(shapes)} in one batch; set crop_size (train), "
            "eval_resize (eval) or use batch_size=1"
        )
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "label": torch.tensor([s["label"] for s in samples], dtype=torch.int64),
        "mask": torch.stack([s["mask"] for s in samples]).float(),
        "ignore": torch.stack([s["ignore"] for s in samples]).bool(),
        "has_mask": torch.tensor([s["has_mask"] for s in samples], dtype=torch.bool),
        "has_object": torch.tensor([s.get("has_object", True) for s in samples], dtype=torch.bool),
        "boxes": [s["boxes"].float().reshape(-1, 4) for s in samples],
        "image_id": [s["image_id"] for s in samples],
        "orig_size": torch.tensor([s["orig_size"] for s in samples], dtype=torch.int64),
    }
