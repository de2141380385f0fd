"""The contract of a metric family: named sufficient statistics that add up over batches, processes, shards.

A family (classification, box, pixel, weight-map S, …) owns a *state*: a dict of float64 numpy arrays whose
values are sums over images. ``init_state`` gives the zero state, ``update`` adds one prepared batch
(:class:`~wsol.evaluation.batch.PreparedBatch`) to it in place, ``compute`` derives the family's metrics.
Because every state entry is a sum, :class:`~wsol.evaluation.WSOLEvaluator` merges two evaluators and
synchronises DDP processes by adding the states entry by entry, whatever the family. A new family is one
file with a subclass and one line in :data:`wsol.evaluation.families.FAMILIES`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wsol.evaluation.batch import PreparedBatch
from wsol.evaluation.config import EvaluatorConfig, Grid

State = dict[str, np.ndarray]
"""Named sufficient statistics (sums over images), float64."""


@dataclass
class FamilyResult:
    """A family's share of the ``EvaluationResult``: ``fields`` (named metrics; names that are not fields of
    ``EvaluationResult`` land in its ``extra``), the τ of each maximised curve, τ curves and PR curves."""

    fields: dict[str, Any] = field(default_factory=dict)
    best_tau: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    pr_curves: dict[str, list[float]] = field(default_factory=dict)


class MetricFamily(abc.ABC):
    """One group of metrics that share their statistics; see the module docstring."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    @classmethod
    def enabled(cls, config: EvaluatorConfig) -> bool:
        """Whether the evaluator runs this family under ``config`` (default: always)."""
        return True

    @abc.abstractmethod
    def init_state(self) -> State:
        """The zero statistics."""

    @abc.abstractmethod
    def update(self, state: State, batch: PreparedBatch) -> None:
        """Add one batch's statistics to ``state`` in place."""

    @abc.abstractmethod
    def compute(self, state: State) -> FamilyResult:
        """The family's metrics from its (summed) statistics."""

    def close(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Release what ``update`` acquired (worker processes); nothing by default."""
