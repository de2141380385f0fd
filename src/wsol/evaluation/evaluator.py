"""The streaming WSOL evaluator: classification, box (MaxBoxAcc V1/V2, top-1/top-5/GT-known loc) and pixel
(PxAP, F1⁺/F1⁻, IoU/mIoU, PR curves) metrics from batched tensors, with constant memory.

``update`` takes numpy arrays or torch tensors (on any device; torch itself is never imported here) and turns
each batch into sufficient statistics (counts of correct boxes per τ and IoU threshold, score histograms,
per-image metric sums) in compiled loops over the whole batch; maps are never kept. Statistics add up, so
evaluators merge (``merge``) and synchronise across DDP processes (``sync_distributed``) by summation.
``compute`` derives every metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from typing import Any, Literal

import cv2
import numpy as np

from wsol.evaluation import parity as ref
from wsol.evaluation.arrays import ArrayLike, to_numpy
from wsol.evaluation.boxes import BoxConvention, box_correctness_batch
from wsol.evaluation.classification import topk_correct
from wsol.evaluation.per_image import PerImageStats
from wsol.evaluation.pixel import (
    bin_edges,
    confusion_curves,
    dice_iou,
    image_histograms,
    interpolated_precisions,
    pxap,
)
from wsol.evaluation.weightmap_score import box_from_map_weightmap

PIXEL_METRICS = ("f1_pos", "f1_neg", "iou_pos", "iou_neg", "miou")
_BOX_KINDS = ("gt_known", "top1", "top5")
_CONTOUR_MODES = ("largest", "all")


@dataclass(frozen=True)
class EvaluatorConfig:
    """How maps are turned into metrics.

    ``parity="wsolevaluation"`` reproduces clovaai/wsolevaluation exactly: maps of another size are resized
    to the 224x224 frame (bicubic), min-max normalised in float32 with NaN/constant maps zeroed
    (``normalize=True``, as ``CAMComputer``) or checked to lie in [0, 1] (``normalize=False``, as the
    ``.npy`` evaluator), GT boxes rescaled with truncation, boxes with the ``min(x + w, W - 1)`` convention.
    ``parity=None`` (default) evaluates at the maps' own resolution (or ``frame_size``), normalises in
    float64, rounds rescaled GT boxes and uses boxes that cover exactly the contour (``docs/evaluation.md``
    lists every difference).
    """

    parity: Literal["wsolevaluation"] | None = None
    cam_curve_interval: float = 0.001
    iou_thresholds: tuple[int, ...] = (30, 50, 70)
    pixel_threshold: float = 0.5
    normalize: bool = True
    frame_size: int | None = None
    pr_recall_step: float = 0.01
    workers: int = 0
    weightmap_score: bool = False
    """Also average the weight-map paper's early-stopping score S (arXiv 2111.14131 Eq. 6) over the maps."""
    per_image: bool = False
    """Also keep every image's statistics for :meth:`WSOLEvaluator.per_image` (memory grows with the images;
    one process only: ``sync_distributed`` does not gather them)."""

    def __post_init__(self) -> None:
        if self.parity not in (None, "wsolevaluation"):
            raise ValueError(
                f"EvaluatorConfig.parity: expected None or 'wsolevaluation', got {self.parity!r}"
            )
        if not 0 < self.cam_curve_interval < 1:
            raise ValueError(
                f"EvaluatorConfig.cam_curve_interval: expected in (0, 1), got {self.cam_curve_interval}"
            )
        object.__setattr__(self, "iou_thresholds", tuple(int(t) for t in self.iou_thresholds))
        if not self.iou_thresholds or any(not 0 < t <= 100 for t in self.iou_thresholds):
            raise ValueError(
                f"EvaluatorConfig.iou_thresholds: expected percentages in (0, 100], got {self.iou_thresholds}"
            )
        if not 0 <= self.pixel_threshold <= 1:
            raise ValueError(
                f"EvaluatorConfig.pixel_threshold: expected in [0, 1], got {self.pixel_threshold}"
            )
        if self.frame_size is not None and self.frame_size < 1:
            raise ValueError(f"EvaluatorConfig.frame_size: expected a positive size, got {self.frame_size}")
        if not 0 < self.pr_recall_step <= 0.5:
            raise ValueError(
                f"EvaluatorConfig.pr_recall_step: expected in (0, 0.5], got {self.pr_recall_step}"
            )
        if self.workers < 0:
            raise ValueError(f"EvaluatorConfig.workers: expected >= 0, got {self.workers}")

    @property
    def box_convention(self) -> BoxConvention:
        return "wsolevaluation" if self.parity else "inclusive"

    @property
    def frame(self) -> int | None:
        """Side of the square evaluation frame, or None for the maps' own resolution."""
        if self.frame_size is None and self.parity:
            return ref.RESIZE_LENGTH
        return self.frame_size

    def cam_thresholds(self) -> np.ndarray:
        return ref.cam_threshold_list(self.cam_curve_interval)

    def recall_axis(self) -> np.ndarray:
        steps = int(round(1 / self.pr_recall_step))
        return np.linspace(0.0, 1.0, steps + 1)


@dataclass(frozen=True)
class EvaluationResult:
    """All metrics, in percent; ``None`` where the evaluated batches lacked what the metric needs.

    Box metrics: ``max_box_acc`` per IoU threshold δ with the largest contour (MaxBoxAcc, V1 rule),
    ``max_box_acc_v2_per_iou`` with all contours, ``max_box_acc_v1`` = δ 50 of the former, ``max_box_acc_v2``
    = mean of the latter; ``gt_known_loc`` = ``max_box_acc_v1``; ``top1_loc``/``top5_loc`` (largest contour)
    and ``top1_loc_v2``/``top5_loc_v2`` (all contours) per δ, each maximised over τ on its own. Pixel
    metrics: per-image means of F1⁺, F1⁻, IoU⁺, mIoU at ``pixel_threshold`` and at each metric's best τ;
    ``pooled`` holds the split-level (pixel-pooled) Dice/IoU. ``best_tau`` names the τ of every maximised
    metric, ``curves`` holds the τ curves (key ``tau`` is the axis), ``pr_curves`` the PR curves.
    """

    config: dict[str, Any]
    num_images: int
    num_classified: int
    num_box_images: int
    num_mask_images: int
    num_degenerate_maps: int
    num_no_object_images: int = 0
    top1_acc: float | None = None
    top5_acc: float | None = None
    top1_err: float | None = None
    top5_err: float | None = None
    max_box_acc: dict[int, float] | None = None
    max_box_acc_v2_per_iou: dict[int, float] | None = None
    max_box_acc_v1: float | None = None
    max_box_acc_v2: float | None = None
    gt_known_loc: float | None = None
    top1_loc: dict[int, float] | None = None
    top5_loc: dict[int, float] | None = None
    top1_loc_v2: dict[int, float] | None = None
    top5_loc_v2: dict[int, float] | None = None
    pxap: float | None = None
    f1_pos: float | None = None
    f1_neg: float | None = None
    iou_pos: float | None = None
    miou: float | None = None
    f1_pos_best: float | None = None
    f1_neg_best: float | None = None
    iou_pos_best: float | None = None
    miou_best: float | None = None
    pooled: dict[str, float] | None = None
    s_score: float | None = None
    best_tau: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    pr_curves: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN becomes None, integer keys become strings)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class WSOLEvaluator:
    """Streaming evaluator; see the module docstring and :class:`EvaluatorConfig`."""

    def __init__(self, config: EvaluatorConfig | None = None) -> None:
        self.config = config or EvaluatorConfig()
        self._taus = self.config.cam_thresholds()
        self._edges = bin_edges(self._taus)
        self._iou_fractions = np.asarray(self.config.iou_thresholds, dtype=np.float64) / 100
        self._recall_axis = self.config.recall_axis()
        self._pool: Executor | None = None
        self.reset()

    # ------------------------------------------------------------------ statistics
    def reset(self) -> None:
        """Forget every accumulated statistic."""
        n_tau, n_iou, n_bins = len(self._taus), len(self.config.iou_thresholds), len(self._edges) - 1
        n_recall = len(self._recall_axis)
        self.stats: dict[str, np.ndarray] = {
            # images, classified, box images, box images with logits, mask, degenerate, no object
            "counts": np.zeros(7),
            "classification": np.zeros(2),  # top-1 correct, top-5 correct
            "box": np.zeros((len(_CONTOUR_MODES), len(_BOX_KINDS), n_iou, n_tau)),
            "hist": np.zeros((2, n_bins)),  # positive, negative pixel score histograms (pooled)
            "pixel_curves": np.zeros((len(PIXEL_METRICS), n_tau)),  # per-image metric sums at each τ
            "pixel_fixed": np.zeros(len(PIXEL_METRICS)),  # per-image metric sums at pixel_threshold
            "confusion_fixed": np.zeros(4),  # pooled tp, fp, fn, tn at pixel_threshold
            "pr": np.zeros((2, n_recall)),  # summed interpolated precision, foreground / background
            "pr_counts": np.zeros(2),
            "weightmap_s": np.zeros(1),  # sum over images of S (only with config.weightmap_score)
        }
        self._images: list[dict[str, Any]] = []  # one entry per image with config.per_image

    def merge(self, other: WSOLEvaluator) -> WSOLEvaluator:
        """Add ``other``'s statistics to this evaluator's (same configuration required); returns ``self``."""
        if other.config != self.config:
            raise ValueError(f"merge: configurations differ ({self.config} vs {other.config})")
        for name, value in other.stats.items():
            self.stats[name] += value
        self._images.extend(other._images)
        return self

    def sync_distributed(self) -> None:
        """Sum the statistics over all processes of the default ``torch.distributed`` group (no-op without
        one).

        One ``all_reduce`` of a float64 vector (exact for counts below 2**53); CPU tensors on gloo, the
        current CUDA device on NCCL.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        names = sorted(self.stats)
        flat = torch.from_numpy(np.concatenate([self.stats[n].ravel() for n in names]))
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        flat = flat.to(device)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat = flat.cpu().numpy()
        offset = 0
        for name in names:
            size = self.stats[name].size
            self.stats[name] = flat[offset : offset + size].reshape(self.stats[name].shape).copy()
            offset += size

    def close(self) -> None:
        """Shut the worker pool down (only used with ``workers > 0``)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> WSOLEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ update
    def update(
        self,
        maps: ArrayLike,
        *,
        masks: ArrayLike | None = None,
        ignore: ArrayLike | None = None,
        boxes: Sequence[ArrayLike] | None = None,
        labels: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        has_mask: ArrayLike | None = None,
        has_object: ArrayLike | None = None,
        image_ids: Sequence[str] | None = None,
    ) -> None:
        """Accumulate one batch.

        ``maps`` (B, H, W) or (B, 1, H, W) scores, a numpy array or a tensor on any device (the whole batch
        is processed in compiled loops, without Python work per map); ``masks`` same shape, {0, 1}; ``ignore``
        bool, same shape (ambiguous background excluded from pixel metrics; foreground pixels always count, as
        wsolevaluation's ``ignore_box \\ foreground``); ``has_mask`` (B,) bool selects the images with a mask;
        ``boxes`` B arrays (N_i, 4) ``x0,y0,x1,y1`` in the maps' pixels (an image with no box is left out of
        box metrics); ``labels`` (B,) and ``logits`` (B, K) give top-1/top-5 accuracy and top-1/top-5
        localization. ``has_object`` (B,) bool marks images that show no object (False, e.g. BUSI ``normal``):
        they count for classification only, whatever masks or boxes are passed for them. ``image_ids`` name
        the images in :meth:`per_image` (default: their running index).
        """
        if self.config.per_image:
            inputs = dict(
                masks=masks,
                ignore=ignore,
                boxes=boxes,
                labels=labels,
                logits=logits,
                has_mask=has_mask,
                has_object=has_object,
            )
            self._update_per_image(maps, inputs, image_ids)
            return
        # Validate and convert everything first, so that a bad argument leaves the statistics untouched.
        scoremaps = self._as_batch(maps, "maps")
        batch, height, width = scoremaps.shape
        prepared, degenerate = self._prepare_maps(scoremaps)
        top1 = top5 = None
        if logits is not None:
            if labels is None:
                raise ValueError("update: logits given without labels")
            logits, labels = to_numpy(logits), to_numpy(labels)
            if logits.ndim != 2 or logits.shape[0] != batch:
                raise ValueError(f"logits: expected shape ({batch}, K), got {tuple(logits.shape)}")
            top1 = topk_correct(logits, labels, 1)
            top5 = topk_correct(logits, labels, 5)
        localized = self._localized(has_object, batch)
        frame_boxes = None
        if boxes is not None:
            if len(boxes) != batch:
                raise ValueError(f"boxes: expected {batch} box arrays (one per map), got {len(boxes)}")
            frame_boxes = [
                self._frame_boxes(gt, (height, width), i) if localized[i] else np.zeros((0, 4), np.int64)
                for i, gt in enumerate(boxes)
            ]
        pixel_inputs = None
        if masks is not None:
            pixel_inputs = self._pixel_inputs(
                prepared, masks, ignore, has_mask, (batch, height, width), localized
            )

        self.stats["counts"][0] += batch
        self.stats["counts"][5] += degenerate
        self.stats["counts"][6] += int((~localized).sum())
        if self.config.weightmap_score:
            self.stats["weightmap_s"][0] += sum(box_from_map_weightmap(m)[1] for m in scoremaps)
        if top1 is not None and top5 is not None:
            self.stats["counts"][1] += batch
            self.stats["classification"] += [top1.sum(), top5.sum()]
        if frame_boxes is not None:
            self._update_boxes(prepared, frame_boxes, top1, top5)
        if pixel_inputs is not None:
            self._update_pixels(*pixel_inputs)

    def update_batch(
        self, maps: ArrayLike, batch: Mapping[str, Any], logits: ArrayLike | None = None
    ) -> None:
        """:meth:`update` with the ground truth of a collated :mod:`wsol.data` batch (masks, ignore map,
        boxes, labels, ``has_mask``/``has_object``, image ids) and the method's ``logits``."""
        self.update(
            maps,
            masks=batch["mask"],
            ignore=batch["ignore"],
            has_mask=batch["has_mask"],
            has_object=batch.get("has_object"),
            boxes=batch["boxes"],
            labels=batch["label"],
            logits=logits,
            image_ids=batch.get("image_id"),
        )

    def _update_per_image(
        self, maps: ArrayLike, inputs: dict[str, Any], image_ids: Sequence[str] | None
    ) -> None:
        """Evaluate each image on its own and add its statistics (the sums equal a batched update's)."""
        batch = self._as_batch(maps, "maps").shape[0]
        if image_ids is not None and len(image_ids) != batch:
            raise ValueError(f"image_ids: expected {batch} ids (one per map), got {len(image_ids)}")
        single = WSOLEvaluator(replace(self.config, per_image=False, workers=0))
        rows, totals = [], []
        for i in range(batch):
            single.reset()
            single.update(maps[i : i + 1], **{k: v[i : i + 1] for k, v in inputs.items() if v is not None})
            stats = single.stats
            totals.append({name: value.copy() for name, value in stats.items()})
            logits, labels = inputs["logits"], inputs["labels"]
            classified = stats["counts"][1] > 0
            rows.append(
                {
                    "image_id": str(image_ids[i])
                    if image_ids is not None
                    else str(int(self.stats["counts"][0]) + i),
                    "label": int(labels[i]) if labels is not None else -1,
                    "predicted": int(logits[i].argmax()) if logits is not None else -1,
                    "top1": stats["classification"][0] if classified else np.nan,
                    "top5": stats["classification"][1] if classified else np.nan,
                    "box": stats["box"][:, 0] > 0,
                    "has_box": stats["counts"][2] > 0,
                    "hist": stats["hist"].astype(np.float32),
                    "has_mask": stats["counts"][4] > 0,
                    "pixel_fixed": stats["pixel_fixed"].copy(),
                }
            )
        for total in totals:  # only now, so that a bad image leaves the statistics untouched
            for name, value in total.items():
                self.stats[name] += value
        self._images.extend(rows)

    def per_image(self) -> PerImageStats:
        """The statistics of every image seen so far (requires ``EvaluatorConfig(per_image=True)``)."""
        if not self.config.per_image:
            raise ValueError("per_image: the evaluator was created without EvaluatorConfig(per_image=True)")
        n_iou, n_tau, n_bins = len(self.config.iou_thresholds), len(self._taus), len(self._edges) - 1
        shapes = {"box": (2, n_iou, n_tau), "hist": (2, n_bins), "pixel_fixed": (len(PIXEL_METRICS),)}
        dtypes = {"image_id": str, "label": np.int64, "predicted": np.int64, "box": bool, "has_box": bool}
        dtypes |= {"has_mask": bool, "hist": np.float32}
        columns = {}
        for name in ("image_id", "label", "predicted", "top1", "top5", "box", "has_box", "hist", "has_mask",
                     "pixel_fixed"):  # fmt: skip
            values = np.array([row[name] for row in self._images], dtype=dtypes.get(name, np.float64))
            columns[name] = values.reshape(len(self._images), *shapes.get(name, ()))
        return PerImageStats(
            **columns,
            taus=self._taus.copy(),
            iou_thresholds=np.asarray(self.config.iou_thresholds, dtype=np.int64),
        )

    @staticmethod
    def _localized(has_object: ArrayLike | None, batch: int) -> np.ndarray:
        """(B,) bool: the images that show an object (all of them when ``has_object`` is None)."""
        if has_object is None:
            return np.ones(batch, dtype=bool)
        localized = to_numpy(has_object).astype(bool).reshape(-1)
        if localized.shape != (batch,):
            raise ValueError(f"has_object: expected shape ({batch},), got {tuple(localized.shape)}")
        return localized

    @staticmethod
    def _as_batch(value: ArrayLike, name: str) -> np.ndarray:
        array = to_numpy(value)
        if array.ndim == 4 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 3:
            raise ValueError(f"{name}: expected shape (B, H, W) or (B, 1, H, W), got {tuple(array.shape)}")
        return array

    def _prepare_maps(self, maps: np.ndarray) -> tuple[np.ndarray, int]:
        """Resize to the frame and normalise, per the configuration; returns (B, S, S) maps and
        #degenerate."""
        dtype = np.float32 if self.config.parity and maps.dtype != np.float64 else np.float64
        array = maps.astype(dtype, copy=False)
        frame = self.config.frame
        if frame is not None and array.shape[1:] != (frame, frame):
            array = np.stack([ref.resize_scoremap(scoremap, frame) for scoremap in array])
        if not self.config.normalize:
            for index in np.flatnonzero(_invalid_scores(array)):
                ref.check_scoremap(array[index], f"maps[{index}]")
            return array, 0
        return _normalize_batch(array)

    def _frame_boxes(self, gt: ArrayLike, map_size: tuple[int, int], index: int) -> np.ndarray:
        array = to_numpy(gt)
        array = np.asarray(array, dtype=np.float64).reshape(-1, 4) if array.size else np.zeros((0, 4))
        if ((array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])).any():
            raise ValueError(f"boxes[{index}]: expected x0 <= x1 and y0 <= y1, got {array.tolist()}")
        height, width = map_size
        frame = self.config.frame
        if self.config.parity:
            if frame is not None:
                return np.array(
                    [ref.resize_box(box, (width, height), (frame, frame)) for box in array], dtype=np.int64
                ).reshape(-1, 4)
            return array.astype(np.int64)
        if frame is not None:
            array = array * np.array([frame / width, frame / height, frame / width, frame / height])
        return np.rint(array).astype(np.int64)

    def _update_boxes(
        self, maps: np.ndarray, boxes: list[np.ndarray], top1: np.ndarray | None, top5: np.ndarray | None
    ) -> None:
        selected = np.array([len(gt) > 0 for gt in boxes], dtype=bool)
        if not selected.any():
            return
        quantized = ref.quantize(maps[selected])
        gts = [gt for gt in boxes if len(gt)]
        arguments = (self._taus, self._iou_fractions, self.config.box_convention)
        if self.config.workers > 0 and len(gts) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.config.workers, mp_context=get_context("spawn"))
            chunks = np.array_split(np.arange(len(gts)), min(self.config.workers, len(gts)))
            futures = [
                self._pool.submit(
                    box_correctness_batch, quantized[c], arguments[0], [gts[i] for i in c], *arguments[1:]
                )
                for c in chunks
            ]
            results = [future.result() for future in futures]
            per_mode = [np.concatenate([r[mode] for r in results]) for mode in range(2)]
        else:
            per_mode = box_correctness_batch(quantized, arguments[0], gts, *arguments[1:])
        box = self.stats["box"]
        for mode, correct in enumerate(per_mode):  # correct: (n, n_iou, n_tau) bool
            box[mode, 0] += correct.sum(axis=0)
            if top1 is not None and top5 is not None:
                box[mode, 1] += correct[top1[selected]].sum(axis=0)
                box[mode, 2] += correct[top5[selected]].sum(axis=0)
        self.stats["counts"][2] += len(gts)
        if top1 is not None:
            self.stats["counts"][3] += len(gts)

    def _frame_mask(self, mask: np.ndarray) -> np.ndarray:
        frame = self.config.frame
        if frame is None or mask.shape == (frame, frame):
            return mask > 0.5
        # wsolevaluation: cv2.resize(INTER_NEAREST) of the float mask, then > 0.5.
        return cv2.resize(mask.astype(np.float32), (frame, frame), interpolation=cv2.INTER_NEAREST) > 0.5

    def _pixel_inputs(
        self,
        maps: np.ndarray,
        masks: ArrayLike,
        ignore: ArrayLike | None,
        has_mask: ArrayLike | None,
        shape: tuple[int, int, int],
        localized: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Scores, positive and negative pixels (n, N) of the images with a mask, in the frame (or None)."""
        mask_batch = self._as_batch(masks, "masks")
        if tuple(mask_batch.shape) != shape:
            raise ValueError(f"masks: expected shape {shape} (as maps), got {tuple(mask_batch.shape)}")
        ignore_batch = None
        if ignore is not None:
            ignore_batch = self._as_batch(ignore, "ignore")
            if tuple(ignore_batch.shape) != shape:
                raise ValueError(f"ignore: expected shape {shape} (as maps), got {tuple(ignore_batch.shape)}")
        selected = np.ones(shape[0], dtype=bool)
        if has_mask is not None:
            selected = to_numpy(has_mask).astype(bool).reshape(-1)
            if selected.shape != (shape[0],):
                raise ValueError(f"has_mask: expected shape ({shape[0]},), got {tuple(has_mask.shape)}")
        selected &= localized
        indices = np.flatnonzero(selected)
        if len(indices) == 0:
            return None
        positive = self._frame_masks(to_numpy(mask_batch)[indices])
        negative = ~positive
        if ignore_batch is not None:
            negative &= ~self._frame_masks(to_numpy(ignore_batch)[indices])
        n = len(indices)
        return maps[indices].reshape(n, -1), positive.reshape(n, -1), negative.reshape(n, -1)

    def _frame_masks(self, masks: np.ndarray) -> np.ndarray:
        """(n, S, S) bool masks in the frame (``> 0.5``)."""
        frame = self.config.frame
        if frame is None or masks.shape[1:] == (frame, frame):
            return masks > 0.5
        return np.stack([self._frame_mask(mask) for mask in masks])

    def _update_pixels(self, scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> None:
        pos_hist, neg_hist, counts = image_histograms(
            scores, positive, negative, self._edges, self.config.pixel_threshold
        )
        self.stats["hist"][0] += pos_hist.sum(0)
        self.stats["hist"][1] += neg_hist.sum(0)
        tp, fp, fn, tn = confusion_curves(pos_hist, neg_hist)
        curves = dice_iou(tp, fp, fn, tn)
        self.stats["pixel_curves"] += np.stack([curves[name].sum(0) for name in PIXEL_METRICS])

        n_pos, n_neg, pos_above, neg_above = counts.T
        fixed = (pos_above, neg_above, n_pos - pos_above, n_neg - neg_above)  # tp, fp, fn, tn
        at_threshold = dice_iou(*fixed)
        self.stats["pixel_fixed"] += np.array([float(at_threshold[name].sum()) for name in PIXEL_METRICS])
        self.stats["confusion_fixed"] += np.array([float(count.sum()) for count in fixed])

        # Background PR: background predicted where score < τ, so its tp = tn and its fp = fn.
        for side, (hits, misses, totals) in enumerate(((tp, fp, n_pos), (tn, fn, n_neg))):
            precision, valid = interpolated_precisions(hits, misses, totals, self._recall_axis)
            self.stats["pr"][side] += precision[valid].sum(0)
            self.stats["pr_counts"][side] += valid.sum()
        self.stats["counts"][4] += len(scores)

    # ------------------------------------------------------------------ compute
    def compute(self) -> EvaluationResult:
        """Derive every metric from the accumulated statistics."""
        counts = self.stats["counts"]
        n_images, n_cls, n_box, n_box_cls, n_mask, n_degenerate, n_no_object = (int(c) for c in counts)
        taus = self._taus
        deltas = self.config.iou_thresholds
        result: dict[str, Any] = {
            "config": asdict(self.config),
            "num_images": n_images,
            "num_classified": n_cls,
            "num_box_images": n_box,
            "num_mask_images": n_mask,
            "num_degenerate_maps": n_degenerate,
            "num_no_object_images": n_no_object,
        }
        best_tau: dict[str, float] = {}
        curves: dict[str, list[float]] = {"tau": taus.tolist()}
        pr_curves: dict[str, list[float]] = {}

        if self.config.weightmap_score and n_images:
            result["s_score"] = float(self.stats["weightmap_s"][0] / n_images)

        if n_cls:
            top1, top5 = self.stats["classification"] * 100 / n_cls
            result.update(top1_acc=top1, top5_acc=top5, top1_err=100 - top1, top5_err=100 - top5)

        if n_box:
            per_mode: dict[tuple[str, str], dict[int, float]] = {}
            for m, mode in enumerate(_CONTOUR_MODES):
                suffix = "" if mode == "largest" else "_v2"
                for k, kind in enumerate(_BOX_KINDS):
                    denominator = n_box if kind == "gt_known" else n_box_cls
                    if not denominator:
                        continue
                    values: dict[int, float] = {}
                    for d, delta in enumerate(deltas):
                        curve = self.stats["box"][m, k, d] * 100 / denominator
                        best = int(np.argmax(curve))
                        name = f"{'box_acc' if kind == 'gt_known' else kind + '_loc'}{suffix}@{delta}"
                        curves[name] = curve.tolist()
                        best_tau[name] = float(taus[best])
                        values[delta] = float(curve[best])
                    per_mode[(mode, kind)] = values
            v1 = per_mode[("largest", "gt_known")]
            v2 = per_mode[("all", "gt_known")]
            result.update(
                max_box_acc=v1,
                max_box_acc_v2_per_iou=v2,
                max_box_acc_v1=v1.get(50),
                max_box_acc_v2=float(np.mean(list(v2.values()))),
                gt_known_loc=v1.get(50),
                top1_loc=per_mode.get(("largest", "top1")),
                top5_loc=per_mode.get(("largest", "top5")),
                top1_loc_v2=per_mode.get(("all", "top1")),
                top5_loc_v2=per_mode.get(("all", "top5")),
            )

        if n_mask:
            positive_hist, negative_hist = self.stats["hist"]
            if positive_hist.sum() > 0:
                value, precision, recall = pxap(positive_hist, negative_hist)
                result["pxap"] = value
                pr_curves["pxap_precision"] = precision.tolist()
                pr_curves["pxap_recall"] = recall.tolist()
            means = self.stats["pixel_curves"] * 100 / n_mask
            fixed = self.stats["pixel_fixed"] * 100 / n_mask
            for i, name in enumerate(PIXEL_METRICS):
                curves[name] = means[i].tolist()
                best = int(np.argmax(means[i]))
                best_tau[name] = float(taus[best])
                if name != "iou_neg":
                    result[name] = float(fixed[i])
                    result[f"{name}_best"] = float(means[i][best])
            pooled_tp = positive_hist[::-1].cumsum()[::-1][: len(taus)]
            pooled_fp = negative_hist[::-1].cumsum()[::-1][: len(taus)]
            pooled_fn = positive_hist.sum() - pooled_tp
            pooled_tn = negative_hist.sum() - pooled_fp
            pooled_curves = dice_iou(pooled_tp, pooled_fp, pooled_fn, pooled_tn)
            pooled_fixed = dice_iou(*self.stats["confusion_fixed"])
            pooled: dict[str, float] = {}
            for name in PIXEL_METRICS:
                curve = pooled_curves[name] * 100
                best = int(np.argmax(curve))
                pooled[name] = float(pooled_fixed[name]) * 100
                pooled[f"{name}_best"] = float(curve[best])
                best_tau[f"pooled_{name}"] = float(taus[best])
                curves[f"pooled_{name}"] = curve.tolist()
            result["pooled"] = pooled
            pr_curves["recall"] = self._recall_axis.tolist()
            for side, name in enumerate(("precision_fg", "precision_bg")):
                if self.stats["pr_counts"][side]:
                    pr_curves[name] = (self.stats["pr"][side] / self.stats["pr_counts"][side]).tolist()
        return EvaluationResult(**result, best_tau=best_tau, curves=curves, pr_curves=pr_curves)


def _invalid_scores(maps: np.ndarray) -> np.ndarray:
    """(B,) whether each map has a NaN or a value outside [0, 1] (``ref.check_scoremap`` names it)."""
    flat = maps.reshape(len(maps), -1)
    if flat.shape[1] == 0:
        return np.zeros(len(maps), dtype=bool)
    return np.isnan(flat).any(axis=1) | (flat.min(axis=1) < 0) | (flat.max(axis=1) > 1)


def _normalize_batch(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """``ref.normalize_scoremap`` of every map at once, in the maps' dtype (the same operations, so the same
    bits): NaN and constant maps become all-zero maps (wsolevaluation's rule, kept in both modes)."""
    flat = maps.reshape(len(maps), -1)
    minima = flat.min(axis=1)
    degenerate = np.isnan(flat).any(axis=1) | (minima == flat.max(axis=1))
    shifted = flat - minima[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted /= shifted.max(axis=1)[:, None]
    shifted[degenerate] = 0
    return shifted.reshape(maps.shape), int(degenerate.sum())
