"""One batch's inputs, validated and brought into the evaluation frame, ready for every metric family.

:func:`prepare_batch` checks every argument of ``WSOLEvaluator.update`` before any statistic changes (so a
bad argument leaves the evaluator untouched), resizes and normalises the maps (``EvaluatorConfig``), rescales
the GT boxes and masks to the frame and computes top-1/top-5 correctness once for all families.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np

from wsol.evaluation import parity as ref
from wsol.evaluation.arrays import ArrayLike, to_numpy
from wsol.evaluation.classification import topk_correct
from wsol.evaluation.config import EvaluatorConfig
from wsol.normalize import degenerate_maps, minmax_normalize


@dataclass(frozen=True)
class BatchInputs:
    """The arguments of ``WSOLEvaluator.update`` besides the maps (see its docstring)."""

    masks: ArrayLike | None = None
    ignore: ArrayLike | None = None
    boxes: Sequence[ArrayLike] | None = None
    labels: ArrayLike | None = None
    logits: ArrayLike | None = None
    has_mask: ArrayLike | None = None
    has_object: ArrayLike | None = None

    def image(self, index: int) -> BatchInputs:
        """The inputs of image ``index`` alone (a batch of one)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return BatchInputs(**{k: None if v is None else v[index : index + 1] for k, v in values.items()})


@dataclass(frozen=True)
class PreparedBatch:
    """What the metric families read: ``raw`` (B, H, W) maps as given, ``maps`` (B, S, S) in the frame and
    normalised, ``degenerate`` their count of constant/NaN maps, ``localized`` (B,) the images that show an
    object, ``top1``/``top5`` (B,) bool or None without logits, ``boxes`` B int64 (N_i, 4) frame boxes (empty
    for an image without box or object) or None, ``pixels`` (scores, positive, negative) (n, N) of the n
    images with a mask, or None."""

    raw: np.ndarray
    maps: np.ndarray
    degenerate: int
    localized: np.ndarray
    top1: np.ndarray | None
    top5: np.ndarray | None
    boxes: list[np.ndarray] | None
    pixels: tuple[np.ndarray, np.ndarray, np.ndarray] | None


def prepare_batch(config: EvaluatorConfig, maps: ArrayLike, inputs: BatchInputs) -> PreparedBatch:
    """Validate and convert one batch (raises ValueError naming the bad argument)."""
    raw = as_batch(maps, "maps")
    shape = raw.shape
    prepared, degenerate = prepare_maps(config, raw)
    top1, top5 = _topk(inputs, shape[0])
    localized = _flags(inputs.has_object, shape[0], "has_object")
    boxes = None
    if inputs.boxes is not None:
        if len(inputs.boxes) != shape[0]:
            raise ValueError(f"boxes: expected {shape[0]} box arrays (one per map), got {len(inputs.boxes)}")
        boxes = [
            _frame_boxes(config, gt, shape[1:], i) if localized[i] else np.zeros((0, 4), np.int64)
            for i, gt in enumerate(inputs.boxes)
        ]
    pixels = None
    if inputs.masks is not None:
        pixels = _pixel_inputs(config, prepared, inputs, shape, localized)
    return PreparedBatch(raw, prepared, degenerate, localized, top1, top5, boxes, pixels)


def as_batch(value: ArrayLike, name: str) -> np.ndarray:
    """(B, H, W) numpy array from (B, H, W) or (B, 1, H, W) input."""
    array = to_numpy(value)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"{name}: expected shape (B, H, W) or (B, 1, H, W), got {tuple(array.shape)}")
    return array


def prepare_maps(config: EvaluatorConfig, maps: np.ndarray) -> tuple[np.ndarray, int]:
    """Resize to the frame and normalise, per the configuration; returns (B, S, S) maps and #degenerate."""
    dtype = np.float32 if config.parity and maps.dtype != np.float64 else np.float64
    array = maps.astype(dtype, copy=False)
    frame = config.frame
    if frame is not None and array.shape[1:] != (frame, frame):
        array = np.stack([ref.resize_scoremap(scoremap, frame) for scoremap in array])
    if not config.normalize:
        for index in np.flatnonzero(_invalid_scores(array)):
            ref.check_scoremap(array[index], f"maps[{index}]")
        return array, 0
    if config.parity:
        return _normalize_like_reference(array)
    return minmax_normalize(array), int(degenerate_maps(array).sum())


def _topk(inputs: BatchInputs, batch: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    if inputs.logits is None:
        return None, None
    if inputs.labels is None:
        raise ValueError("update: logits given without labels")
    logits, labels = to_numpy(inputs.logits), to_numpy(inputs.labels)
    if logits.ndim != 2 or logits.shape[0] != batch:
        raise ValueError(f"logits: expected shape ({batch}, K), got {tuple(logits.shape)}")
    return topk_correct(logits, labels, 1), topk_correct(logits, labels, 5)


def _flags(flags: ArrayLike | None, batch: int, name: str) -> np.ndarray:
    """(B,) bool from an optional per-image flag (all True when None)."""
    if flags is None:
        return np.ones(batch, dtype=bool)
    array = to_numpy(flags).astype(bool).reshape(-1)
    if array.shape != (batch,):
        raise ValueError(f"{name}: expected shape ({batch},), got {tuple(to_numpy(flags).shape)}")
    return array


def _frame_boxes(config: EvaluatorConfig, gt: ArrayLike, map_size: tuple[int, ...], index: int) -> np.ndarray:
    array = to_numpy(gt)
    array = np.asarray(array, dtype=np.float64).reshape(-1, 4) if array.size else np.zeros((0, 4))
    if ((array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])).any():
        raise ValueError(f"boxes[{index}]: expected x0 <= x1 and y0 <= y1, got {array.tolist()}")
    height, width = map_size
    frame = config.frame
    if config.parity:
        if frame is not None:
            return np.array(
                [ref.resize_box(box, (width, height), (frame, frame)) for box in array], dtype=np.int64
            ).reshape(-1, 4)
        return array.astype(np.int64)
    if frame is not None:
        array = array * np.array([frame / width, frame / height, frame / width, frame / height])
    return np.rint(array).astype(np.int64)


def _pixel_inputs(
    config: EvaluatorConfig,
    maps: np.ndarray,
    inputs: BatchInputs,
    shape: tuple[int, int, int],
    localized: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Scores, positive and negative pixels (n, N) of the images with a mask, in the frame (or None)."""
    assert inputs.masks is not None
    mask_batch = _same_shape(inputs.masks, "masks", shape)
    ignore_batch = None if inputs.ignore is None else _same_shape(inputs.ignore, "ignore", shape)
    selected = _flags(inputs.has_mask, shape[0], "has_mask") & localized
    indices = np.flatnonzero(selected)
    if len(indices) == 0:
        return None
    positive = _frame_masks(config, _rows(mask_batch, indices))
    negative = ~positive
    if ignore_batch is not None:
        negative &= ~_frame_masks(config, _rows(ignore_batch, indices))
    n = len(indices)
    return _rows(maps, indices).reshape(n, -1), positive.reshape(n, -1), negative.reshape(n, -1)


def _rows(array: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``array[indices]``, without a copy when the indices are all the rows in order."""
    return array if len(indices) == len(array) else array[indices]


def _same_shape(value: ArrayLike, name: str, shape: tuple[int, int, int]) -> np.ndarray:
    array = as_batch(value, name)
    if tuple(array.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape} (as maps), got {tuple(array.shape)}")
    return array


def _frame_masks(config: EvaluatorConfig, masks: np.ndarray) -> np.ndarray:
    """(n, S, S) bool masks in the frame (``> 0.5``); wsolevaluation resizes the float mask with
    ``cv2.INTER_NEAREST`` first."""
    frame = config.frame
    if frame is None or masks.shape[1:] == (frame, frame):
        return masks > 0.5
    size, nearest = (frame, frame), cv2.INTER_NEAREST
    resized = [cv2.resize(m.astype(np.float32), size, interpolation=nearest) for m in masks]
    return np.stack(resized) > 0.5


def _invalid_scores(maps: np.ndarray) -> np.ndarray:
    """(B,) whether each map has a NaN or a value outside [0, 1] (``ref.check_scoremap`` names it)."""
    flat = maps.reshape(len(maps), -1)
    if flat.shape[1] == 0:
        return np.zeros(len(maps), dtype=bool)
    return np.isnan(flat).any(axis=1) | (flat.min(axis=1) < 0) | (flat.max(axis=1) > 1)


def _normalize_like_reference(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """``ref.normalize_scoremap`` of every map at once, in the maps' dtype (the same operations, so the same
    bits): NaN and constant maps become all-zero maps.

    Kept apart from :func:`wsol.normalize.minmax_normalize` for ``parity="wsolevaluation"`` only: the
    reference turns a map holding ±inf into NaN scores instead of zeros, and parity keeps even that.
    """
    flat = maps.reshape(len(maps), -1)
    minima = flat.min(axis=1)  # NaN where the map holds a NaN
    degenerate = np.isnan(minima) | (minima == flat.max(axis=1))
    shifted = flat - minima[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted /= shifted.max(axis=1)[:, None]
    shifted[degenerate] = 0
    return shifted.reshape(maps.shape), int(degenerate.sum())
