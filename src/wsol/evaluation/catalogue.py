"""The metric catalogue: one row per metric, from which every list of metric names derives.

The training engine's logged metrics (:func:`logged_metrics`), the model-selection keys of
``trainer.select_on`` (:func:`selection_modes`), the one-line summary of ``wsol evaluate``
(:func:`summary_metrics`), the columns of ``wsol compare`` / ``wsol demo`` / ``wsol report``
(:func:`comparison_metrics`) and ``wsol list`` all read this table. Standard library only, so the command
line can read it without numpy or torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric.

    ``name``: its key in ``EvaluationResult`` / ``metrics.json`` (``from_result=False``: computed by the
    training engine instead, e.g. the validation ``error``); ``title``: its table header; ``unit``: ``"%"``
    or ``""`` (a fraction); ``higher_is_better``; ``tau``: maximised over τ on the evaluated split (so a table
    shows it at the validation τ and the oracle τ); ``per_image``: its per-image key
    (``PerImageStats.values_at``), for paired bootstrap intervals; ``logged``: logged as ``val/<name>`` and
    ``test/<name>`` during training. ``select``, ``summary``, ``column``: its position in the
    ``trainer.select_on`` keys, in the summary line of ``wsol evaluate`` and among the comparison columns
    (None: not there).
    """

    name: str
    title: str
    unit: str = "%"
    higher_is_better: bool = True
    tau: bool = False
    per_image: str | None = None
    logged: bool = False
    from_result: bool = True
    select: int | None = None
    summary: int | None = None
    column: int | None = None


METRICS: tuple[Metric, ...] = (
    Metric("top1_acc", "top-1 accuracy %", summary=1),
    Metric("top5_acc", "top-5 accuracy %", summary=2),
    Metric("top1_err", "classification error %", higher_is_better=False, per_image="top1_err", column=1),
    Metric("top5_err", "top-5 error %", higher_is_better=False),
    Metric("max_box_acc", "MaxBoxAcc per δ", tau=True),
    Metric("max_box_acc_v2_per_iou", "MaxBoxAcc (all contours) per δ", tau=True),
    Metric("max_box_acc_v1", "MaxBoxAcc (V1)", tau=True, logged=True, select=4, summary=3),
    Metric(
        "max_box_acc_v2",
        "MaxBoxAccV2",
        tau=True,
        per_image="max_box_acc_v2",
        logged=True,
        select=3,
        summary=4,
        column=3,
    ),
    Metric("gt_known_loc", "GT-known loc %", tau=True, per_image="box_acc@50", column=4),
    Metric("top1_loc", "top-1 loc %", tau=True, summary=5, column=5),
    Metric("top5_loc", "top-5 loc %", tau=True),
    Metric("top1_loc_v2", "top-1 loc % (all contours)", tau=True),
    Metric("top5_loc_v2", "top-5 loc % (all contours)", tau=True),
    Metric("pxap", "PxAP", per_image="pxap", logged=True, select=2, summary=6, column=2),
    Metric("f1_pos", "F1⁺ % at the fixed τ", per_image="f1_pos", logged=True, select=5, summary=7, column=8),
    Metric("f1_neg", "F1⁻ % at the fixed τ", per_image="f1_neg", logged=True, select=6, summary=8, column=9),
    Metric("iou_pos", "IoU⁺ % at the fixed τ", logged=True),
    Metric("miou", "mIoU % at the fixed τ", logged=True, select=7),
    Metric("f1_pos_best", "F1⁺ %", tau=True, per_image="f1_pos_best", logged=True, column=6),
    Metric("f1_neg_best", "F1⁻ %", tau=True, per_image="f1_neg_best", logged=True, column=7),
    Metric("iou_pos_best", "IoU⁺ %", tau=True),
    Metric("miou_best", "mIoU %", tau=True),
    Metric("pooled", "pixel-pooled F1/IoU %"),
    Metric("s_score", "weight-map score S", unit="", logged=True, select=8),
    Metric("error", "validation error %", higher_is_better=False, logged=True, from_result=False, select=1),
)
"""Every metric, in ``EvaluationResult`` order (engine metrics last)."""


def _ranked(position: str) -> tuple[Metric, ...]:
    placed = [metric for metric in METRICS if getattr(metric, position) is not None]
    return tuple(sorted(placed, key=lambda metric: getattr(metric, position)))


def result_metrics() -> tuple[str, ...]:
    """The metric fields of ``EvaluationResult`` (what ``wsol list`` prints, sorted there)."""
    return tuple(metric.name for metric in METRICS if metric.from_result)


def logged_metrics() -> tuple[str, ...]:
    """``EvaluationResult`` fields the training engine logs as ``val/<name>`` / ``test/<name>``."""
    return tuple(metric.name for metric in METRICS if metric.logged and metric.from_result)


def selection_modes() -> dict[str, str]:
    """``trainer.select_on`` key (``val/<name>``) -> ``"max"`` or ``"min"``."""
    return {f"val/{m.name}": "max" if m.higher_is_better else "min" for m in _ranked("select")}


def summary_metrics() -> tuple[str, ...]:
    """The metrics of the one-line summary ``wsol evaluate`` prints, in order."""
    return tuple(metric.name for metric in _ranked("summary"))


def comparison_metrics() -> tuple[Metric, ...]:
    """The columns of ``wsol compare`` (and of the demo and HTML report tables), in order."""
    return _ranked("column")
