"""Box metrics: MaxBoxAcc (V1, largest contour) and MaxBoxAccV2 (all contours) per IoU threshold δ, GT-known
loc and top-1/top-5 loc (Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right",
CVPR 2020, arXiv 2001.07437, Eq. 2-3), each maximised over τ on its own.

The statistics are counts of correct boxes per contour mode, kind (GT-known, top-1, top-5), δ and τ.
"""

from __future__ import annotations

from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from wsol.evaluation import parity as ref
from wsol.evaluation.batch import PreparedBatch
from wsol.evaluation.boxes import box_correctness_batch
from wsol.evaluation.config import Grid
from wsol.evaluation.family import FamilyResult, MetricFamily, State

CONTOUR_MODES = ("largest", "all")
BOX_KINDS = ("gt_known", "top1", "top5")


class BoxAccuracy(MetricFamily):
    """``num_box_images``, ``max_box_acc*``, ``gt_known_loc``, ``top1_loc*``, ``top5_loc*`` and the BoxAcc τ
    curves; images without a box (or without an object) are left out."""

    def __init__(self, grid: Grid) -> None:
        super().__init__(grid)
        self._pool: Executor | None = None

    def init_state(self) -> State:
        shape = (len(CONTOUR_MODES), len(BOX_KINDS), len(self.grid.iou_fractions), len(self.grid.taus))
        return {"images": np.zeros(()), "images_classified": np.zeros(()), "correct": np.zeros(shape)}

    def update(self, state: State, batch: PreparedBatch) -> None:
        if batch.boxes is None:
            return
        selected = np.array([len(gt) > 0 for gt in batch.boxes], dtype=bool)
        if not selected.any():
            return
        gts = [gt for gt in batch.boxes if len(gt)]
        maps = batch.maps if selected.all() else batch.maps[selected]
        per_mode = self._correctness(ref.quantize(maps), gts)
        correct = state["correct"]
        for mode, hits in enumerate(per_mode):  # hits: (n, n_iou, n_tau) bool
            correct[mode, 0] += hits.sum(axis=0)
            if batch.top1 is not None and batch.top5 is not None:
                correct[mode, 1] += hits[batch.top1[selected]].sum(axis=0)
                correct[mode, 2] += hits[batch.top5[selected]].sum(axis=0)
        state["images"] += len(gts)
        if batch.top1 is not None:
            state["images_classified"] += len(gts)

    def _correctness(self, quantized: np.ndarray, gts: list[np.ndarray]) -> list[np.ndarray]:
        """Box correctness per contour mode, on ``config.workers`` processes when asked."""
        config, taus = self.grid.config, self.grid.taus
        arguments = (self.grid.iou_fractions, config.box_convention)
        if config.workers == 0 or len(gts) < 2:
            return list(box_correctness_batch(quantized, taus, gts, *arguments))
        if self._pool is None:
            self._pool = ProcessPoolExecutor(config.workers, mp_context=get_context("spawn"))
        chunks = np.array_split(np.arange(len(gts)), min(config.workers, len(gts)))
        futures = [
            self._pool.submit(box_correctness_batch, quantized[c], taus, [gts[i] for i in c], *arguments)
            for c in chunks
        ]
        results = [future.result() for future in futures]
        return [np.concatenate([r[mode] for r in results]) for mode in range(len(CONTOUR_MODES))]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def compute(self, state: State) -> FamilyResult:
        count = int(state["images"])
        out = FamilyResult({"num_box_images": count})
        if not count:
            return out
        per_mode = self._max_over_tau(state, out)
        v1 = per_mode[("largest", "gt_known")]
        v2 = per_mode[("all", "gt_known")]
        out.fields |= {
            "max_box_acc": v1,
            "max_box_acc_v2_per_iou": v2,
            "max_box_acc_v1": v1.get(50),
            "max_box_acc_v2": float(np.mean(list(v2.values()))),
            "gt_known_loc": v1.get(50),
            "top1_loc": per_mode.get(("largest", "top1")),
            "top5_loc": per_mode.get(("largest", "top5")),
            "top1_loc_v2": per_mode.get(("all", "top1")),
            "top5_loc_v2": per_mode.get(("all", "top5")),
        }
        return out

    def _max_over_tau(self, state: State, out: FamilyResult) -> dict[tuple[str, str], dict[int, float]]:
        """Per (contour mode, kind): the best accuracy over τ for each δ; records curves and τ in ``out``."""
        denominators = {"gt_known": int(state["images"]), "top1": int(state["images_classified"])}
        denominators["top5"] = denominators["top1"]
        per_mode: dict[tuple[str, str], dict[int, float]] = {}
        for m, mode in enumerate(CONTOUR_MODES):
            suffix = "" if mode == "largest" else "_v2"
            for k, kind in enumerate(BOX_KINDS):
                if not denominators[kind]:
                    continue
                values: dict[int, float] = {}
                for d, delta in enumerate(self.grid.config.iou_thresholds):
                    curve = state["correct"][m, k, d] * 100 / denominators[kind]
                    best = int(np.argmax(curve))
                    name = f"{'box_acc' if kind == 'gt_known' else kind + '_loc'}{suffix}@{delta}"
                    out.curves[name] = curve.tolist()
                    out.best_tau[name] = float(self.grid.taus[best])
                    values[delta] = float(curve[best])
                per_mode[(mode, kind)] = values
        return per_mode
