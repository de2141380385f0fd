"""The metric catalogue: every list derived from it equals the list that was hand-copied before (golden)."""

from __future__ import annotations

from dataclasses import fields

from wsol.cli.evaluate import _summary
from wsol.cli.list_registries import registries
from wsol.evaluation import EvaluationResult
from wsol.evaluation.catalogue import METRICS, comparison_metrics
from wsol.report.compare import COLUMNS, Column
from wsol.training.config import SELECTION_MODES
from wsol.training.module import LOGGED_METRICS


def test_logged_metrics_golden() -> None:
    assert LOGGED_METRICS == (
        "max_box_acc_v1",
        "max_box_acc_v2",
        "pxap",
        "f1_pos",
        "f1_neg",
        "iou_pos",
        "miou",
        "f1_pos_best",
        "f1_neg_best",
        "s_score",
    )


def test_selection_modes_golden_in_order() -> None:
    assert list(SELECTION_MODES.items()) == [
        ("val/error", "min"),
        ("val/pxap", "max"),
        ("val/max_box_acc_v2", "max"),
        ("val/max_box_acc_v1", "max"),
        ("val/f1_pos", "max"),
        ("val/f1_neg", "max"),
        ("val/miou", "max"),
        ("val/s_score", "max"),
    ]


def test_comparison_columns_golden() -> None:
    assert COLUMNS == (
        Column("top1_err", "classification error %", per_image="top1_err"),
        Column("pxap", "PxAP", per_image="pxap"),
        Column("max_box_acc_v2", "MaxBoxAccV2", tau=True, per_image="max_box_acc_v2"),
        Column("gt_known_loc", "GT-known loc %", tau=True, per_image="box_acc@50"),
        Column("top1_loc", "top-1 loc %", tau=True),
        Column("f1_pos_best", "F1⁺ %", tau=True, per_image="f1_pos_best"),
        Column("f1_neg_best", "F1⁻ %", tau=True, per_image="f1_neg_best"),
        Column("f1_pos", "F1⁺ % at the fixed τ", per_image="f1_pos"),
        Column("f1_neg", "F1⁻ % at the fixed τ", per_image="f1_neg"),
    )
    assert [m.name for m in comparison_metrics()] == [c.key for c in COLUMNS]


def test_evaluate_summary_golden() -> None:
    result = EvaluationResult(
        config={},
        num_images=3,
        num_classified=3,
        num_box_images=3,
        num_mask_images=3,
        num_degenerate_maps=0,
        top1_acc=50.0,
        top5_acc=100.0,
        max_box_acc_v1=40.0,
        max_box_acc_v2=30.0,
        top1_loc={30: 25.0, 50: 20.0},
        pxap=12.345678,
        f1_pos=1.0,
        f1_neg=2.0,
        miou=9.0,  # not in the summary
    )
    assert _summary(result) == (
        "images=3 top1_acc=50.0000 top5_acc=100.0000 max_box_acc_v1=40.0000 max_box_acc_v2=30.0000 "
        "top1_loc=20.0000 pxap=12.3457 f1_pos=1.0000 f1_neg=2.0000"
    )


def test_listed_metrics_are_the_result_fields() -> None:
    not_metrics = {"config", "best_tau", "curves", "pr_curves", "extra"}
    result_fields = {f.name for f in fields(EvaluationResult) if f.name not in not_metrics}
    expected = sorted(name for name in result_fields if not name.startswith("num_"))
    assert registries()["metrics"] == expected
    assert {m.name for m in METRICS if not m.from_result} == {"error"}


def test_catalogue_rows_are_consistent() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for position in ("select", "summary", "column"):
        ranks = [getattr(m, position) for m in METRICS if getattr(m, position) is not None]
        assert sorted(ranks) == list(range(1, len(ranks) + 1)), position
    by_name = {m.name: m for m in METRICS}
    assert by_name["s_score"].unit == "" and by_name["pxap"].unit == "%"
    assert not by_name["top1_err"].higher_is_better and not by_name["error"].higher_is_better
