"""Top-1 / top-5 classification accuracy and error (the field's classification metrics, in percent)."""

from __future__ import annotations

import numpy as np

from wsol.evaluation.batch import PreparedBatch
from wsol.evaluation.family import FamilyResult, MetricFamily, State


class Classification(MetricFamily):
    """``num_classified``, ``top1_acc``, ``top5_acc``, ``top1_err``, ``top5_err`` over the images with
    logits."""

    def init_state(self) -> State:
        return {"images": np.zeros(()), "top1": np.zeros(()), "top5": np.zeros(())}

    def update(self, state: State, batch: PreparedBatch) -> None:
        if batch.top1 is None or batch.top5 is None:
            return
        state["images"] += len(batch.top1)
        state["top1"] += batch.top1.sum()
        state["top5"] += batch.top5.sum()

    def compute(self, state: State) -> FamilyResult:
        count = int(state["images"])
        fields: dict[str, float | int] = {"num_classified": count}
        if count:
            top1, top5 = float(state["top1"] * 100 / count), float(state["top5"] * 100 / count)
            fields |= {"top1_acc": top1, "top5_acc": top5, "top1_err": 100 - top1, "top5_err": 100 - top5}
        return FamilyResult(fields)
