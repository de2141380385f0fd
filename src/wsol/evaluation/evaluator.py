"""The streaming WSOL evaluator: classification, box (MaxBoxAcc V1/V2, top-1/top-5/GT-known loc) and pixel
(PxAP, F1⁺/F1⁻, IoU/mIoU, PR curves) metrics from batched tensors, with constant memory.

``update`` takes numpy arrays or torch tensors (on any device; torch itself is never imported here), checks
and prepares the batch once (:mod:`wsol.evaluation.batch`) and hands it to every metric family of
:data:`wsol.evaluation.families.FAMILIES` (:mod:`wsol.evaluation.family`), each of which adds sufficient
statistics (counts of correct boxes per τ and IoU threshold, score histograms, per-image metric sums) to its
own named state in compiled loops over the whole batch; maps are never kept. Statistics add up, so evaluators
merge (``merge``) and synchronise across DDP processes (``sync_distributed``) by summation, family by family.
``compute`` lets each family derive its metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from wsol.evaluation.arrays import ArrayLike
from wsol.evaluation.batch import BatchInputs, as_batch, prepare_batch
from wsol.evaluation.config import EvaluatorConfig, Grid
from wsol.evaluation.families import FAMILIES
from wsol.evaluation.families.pixel import PIXEL_METRICS
from wsol.evaluation.family import FamilyResult, MetricFamily, State
from wsol.evaluation.per_image import PerImageStats

__all__ = ["EvaluationResult", "EvaluatorConfig", "WSOLEvaluator"]


@dataclass(frozen=True)
class EvaluationResult:
    """All metrics, in percent; ``None`` where the evaluated batches lacked what the metric needs.

    Box metrics: ``max_box_acc`` per IoU threshold δ with the largest contour (MaxBoxAcc, V1 rule),
    ``max_box_acc_v2_per_iou`` with all contours, ``max_box_acc_v1`` = δ 50 of the former, ``max_box_acc_v2``
    = mean of the latter; ``gt_known_loc`` = ``max_box_acc_v1``; ``top1_loc``/``top5_loc`` (largest contour)
    and ``top1_loc_v2``/``top5_loc_v2`` (all contours) per δ, each maximised over τ on its own. Pixel
    metrics: per-image means of F1⁺, F1⁻, IoU⁺, mIoU at ``pixel_threshold`` and at each metric's best τ;
    ``pooled`` holds the split-level (pixel-pooled) Dice/IoU. ``best_tau`` names the τ of every maximised
    metric, ``curves`` holds the τ curves (key ``tau`` is the axis), ``pr_curves`` the PR curves. ``extra``
    holds the metrics of registered families that have no field here (``to_dict`` puts them at the top level).
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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN becomes None, integer keys become strings, ``extra`` spread out)."""
        values = asdict(self)
        extra = values.pop("extra")
        return _jsonable({**values, **extra})


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


_RESULT_FIELDS = frozenset(f.name for f in fields(EvaluationResult))


class WSOLEvaluator:
    """Streaming evaluator; see the module docstring and :class:`EvaluatorConfig`."""

    def __init__(self, config: EvaluatorConfig | None = None) -> None:
        self.config = config or EvaluatorConfig()
        self._grid = Grid.from_config(self.config)
        self._families: dict[str, MetricFamily] = {
            name: family(self._grid) for name, family in FAMILIES.items() if family.enabled(self.config)
        }
        self.reset()

    # ------------------------------------------------------------------ statistics
    def reset(self) -> None:
        """Forget every accumulated statistic."""
        self._states: dict[str, State] = {name: f.init_state() for name, f in self._families.items()}
        self._images: list[dict[str, Any]] = []  # one entry per image with config.per_image

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """Every family's state, flat: ``"<family>.<entry>"`` -> array (the arrays themselves, not copies)."""
        return {
            f"{family}.{entry}": value
            for family, state in self._states.items()
            for entry, value in state.items()
        }

    def merge(self, other: WSOLEvaluator) -> WSOLEvaluator:
        """Add ``other``'s statistics to this evaluator's (same configuration required); returns ``self``."""
        if other.config != self.config or other._families.keys() != self._families.keys():
            raise ValueError(f"merge: configurations differ ({self.config} vs {other.config})")
        _add(self.stats, other.stats)
        self._images.extend(other._images)
        return self

    def sync_distributed(self) -> None:
        """Sum the statistics over all processes of the default ``torch.distributed`` group (no-op without
        one).

        One ``all_reduce`` of a float64 vector of every family's state (exact for counts below 2**53); CPU
        tensors on gloo, the current CUDA device on NCCL.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        stats = self.stats
        names = sorted(stats)
        flat = torch.from_numpy(np.concatenate([stats[n].ravel() for n in names]))
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        flat = flat.to(device)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat = flat.cpu().numpy()
        offset = 0
        for name in names:
            size = stats[name].size
            stats[name][...] = flat[offset : offset + size].reshape(stats[name].shape)
            offset += size

    def close(self) -> None:
        """Release the families' resources (the box family's worker pool with ``workers > 0``)."""
        for family in self._families.values():
            family.close()

    def __enter__(self) -> WSOLEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ update
    def update(  # noqa: PLR0913 (the public keyword API, one argument per batch key; BatchInputs inside)
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
        inputs = BatchInputs(masks, ignore, boxes, labels, logits, has_mask, has_object)
        if self.config.per_image:
            self._update_per_image(maps, inputs, image_ids)
        else:
            self._accumulate(maps, inputs)

    def _accumulate(self, maps: ArrayLike, inputs: BatchInputs) -> None:
        # prepare_batch validates everything first, so that a bad argument leaves the statistics untouched.
        batch = prepare_batch(self.config, maps, inputs)
        for name, family in self._families.items():
            family.update(self._states[name], batch)

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

    # ------------------------------------------------------------------ per image
    def _update_per_image(
        self, maps: ArrayLike, inputs: BatchInputs, image_ids: Sequence[str] | None
    ) -> None:
        """Evaluate each image on its own and add its statistics (the sums equal a batched update's)."""
        batch = as_batch(maps, "maps").shape[0]
        if image_ids is not None and len(image_ids) != batch:
            raise ValueError(f"image_ids: expected {batch} ids (one per map), got {len(image_ids)}")
        single = WSOLEvaluator(replace(self.config, per_image=False, workers=0))
        seen = int(self._states["images"]["images"])
        rows, totals = [], []
        for i in range(batch):
            single.reset()
            single._accumulate(maps[i : i + 1], inputs.image(i))
            totals.append({name: value.copy() for name, value in single.stats.items()})
            image_id = str(image_ids[i]) if image_ids is not None else str(seen + i)
            rows.append(_image_row(single._states, inputs, i, image_id))
        stats = self.stats
        for total in totals:  # only now, so that a bad image leaves the statistics untouched
            _add(stats, total)
        self._images.extend(rows)

    def per_image(self) -> PerImageStats:
        """The statistics of every image seen so far (requires ``EvaluatorConfig(per_image=True)``)."""
        if not self.config.per_image:
            raise ValueError("per_image: the evaluator was created without EvaluatorConfig(per_image=True)")
        n_iou, n_tau = len(self.config.iou_thresholds), len(self._grid.taus)
        n_bins = len(self._grid.edges) - 1
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
            taus=self._grid.taus.copy(),
            iou_thresholds=np.asarray(self.config.iou_thresholds, dtype=np.int64),
        )

    # ------------------------------------------------------------------ compute
    def compute(self) -> EvaluationResult:
        """Derive every metric from the accumulated statistics, family by family."""
        combined = FamilyResult(curves={"tau": self._grid.taus.tolist()})
        for name, family in self._families.items():
            part = family.compute(self._states[name])
            combined.fields |= part.fields
            combined.best_tau |= part.best_tau
            combined.curves |= part.curves
            combined.pr_curves |= part.pr_curves
        known = {k: v for k, v in combined.fields.items() if k in _RESULT_FIELDS}
        extra = {k: v for k, v in combined.fields.items() if k not in _RESULT_FIELDS}
        return EvaluationResult(
            config=asdict(self.config),
            **known,
            best_tau=combined.best_tau,
            curves=combined.curves,
            pr_curves=combined.pr_curves,
            extra=extra,
        )


def _add(stats: dict[str, np.ndarray], other: Mapping[str, np.ndarray]) -> None:
    """Add ``other``'s statistics to the arrays of ``stats`` in place (same names and shapes)."""
    for name, value in other.items():
        stats[name] += value


def _image_row(states: dict[str, State], inputs: BatchInputs, i: int, image_id: str) -> dict[str, Any]:
    """One image's per-image statistics (:class:`PerImageStats` columns) from a one-image evaluation."""
    classification, box, pixel = states["classification"], states["box"], states["pixel"]
    classified = classification["images"] > 0
    return {
        "image_id": image_id,
        "label": int(inputs.labels[i]) if inputs.labels is not None else -1,
        "predicted": int(inputs.logits[i].argmax()) if inputs.logits is not None else -1,
        "top1": float(classification["top1"]) if classified else np.nan,
        "top5": float(classification["top5"]) if classified else np.nan,
        "box": box["correct"][:, 0] > 0,
        "has_box": box["images"] > 0,
        "hist": pixel["hist"].astype(np.float32),
        "has_mask": pixel["images"] > 0,
        "pixel_fixed": pixel["fixed"].copy(),
    }
