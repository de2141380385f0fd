"""Image counts: every image seen, degenerate (constant or non-finite) maps, images without an object."""

from __future__ import annotations

import numpy as np

from wsol.evaluation.batch import PreparedBatch
from wsol.evaluation.family import FamilyResult, MetricFamily, State


class ImageCounts(MetricFamily):
    """``num_images``, ``num_degenerate_maps``, ``num_no_object_images``."""

    def init_state(self) -> State:
        return {"images": np.zeros(()), "degenerate": np.zeros(()), "no_object": np.zeros(())}

    def update(self, state: State, batch: PreparedBatch) -> None:
        state["images"] += len(batch.maps)
        state["degenerate"] += batch.degenerate
        state["no_object"] += int((~batch.localized).sum())

    def compute(self, state: State) -> FamilyResult:
        return FamilyResult(
            {
                "num_images": int(state["images"]),
                "num_degenerate_maps": int(state["degenerate"]),
                "num_no_object_images": int(state["no_object"]),
            }
        )
