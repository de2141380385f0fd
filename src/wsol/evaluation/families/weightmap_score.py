"""The weight-map paper's early-stopping score S, averaged over every map (Shaharabany & Wolf, arXiv
2111.14131, Eq. 6; the box rule is :func:`wsol.evaluation.weightmap_score.box_from_map_weightmap`).

Runs only with ``EvaluatorConfig(weightmap_score=True)``; S is computed on the maps as given, before the
evaluator's resizing and normalisation, with the full-frame guard ``EvaluatorConfig.weightmap_max_box``
(``None``: the paper-exact S).
"""

from __future__ import annotations

import numpy as np

from wsol.evaluation.batch import PreparedBatch
from wsol.evaluation.config import EvaluatorConfig
from wsol.evaluation.family import FamilyResult, MetricFamily, State
from wsol.evaluation.weightmap_score import weightmap_s_score


class WeightMapScore(MetricFamily):
    """``s_score``: mean S over the images."""

    @classmethod
    def enabled(cls, config: EvaluatorConfig) -> bool:
        return config.weightmap_score

    def init_state(self) -> State:
        return {"images": np.zeros(()), "s_sum": np.zeros(())}

    def update(self, state: State, batch: PreparedBatch) -> None:
        guard = self.grid.config.weightmap_max_box
        state["s_sum"] += sum(weightmap_s_score(m, guard) for m in batch.raw)
        state["images"] += len(batch.raw)

    def compute(self, state: State) -> FamilyResult:
        count = int(state["images"])
        return FamilyResult({"s_score": float(state["s_sum"] / count)} if count else {})
