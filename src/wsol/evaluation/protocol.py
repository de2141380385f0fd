"""Thresholds chosen on validation, applied to test.

Every ``Max*`` / ``*_best`` figure of :class:`~wsol.evaluation.EvaluationResult` maximises over τ on the very
split it reports (the oracle protocol of Choe et al., CVPR 2020, arXiv 2001.07437, Eq. 2-3, and of the
min-max entropy paper's F1⁺/F1⁻). The honest figure fixes τ on the validation split — the box τ for each
BoxAcc curve, the pixel τ for each F1/IoU curve — and reads the test curve there. :func:`at_validation_tau`
returns those figures under the oracle metrics' own names, so a table can put them side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wsol.evaluation.evaluator import EvaluationResult, WSOLEvaluator
from wsol.io import atomic_write_text

PER_IMAGE_FILE = "per_image.npz"
METRICS_FILE = "metrics.json"

_PIXEL_BEST = ("f1_pos", "f1_neg", "iou_pos", "miou")


def tau_indices(result: EvaluationResult) -> dict[str, int]:
    """Position on the τ grid of the best value of every τ curve of ``result`` (its oracle τ)."""
    return {key: int(np.argmax(curve)) for key, curve in result.curves.items() if key != "tau"}


def _check_grids(val: EvaluationResult, test: EvaluationResult) -> None:
    if val.curves.get("tau") != test.curves.get("tau"):
        raise ValueError("validation and test were evaluated on different τ grids (cam_curve_interval)")
    keys = ("iou_thresholds", "parity", "normalize", "frame_size", "pixel_threshold")
    differing = [key for key in keys if val.config.get(key) != test.config.get(key)]
    if differing:
        raise ValueError(f"validation and test evaluator settings differ in {', '.join(differing)}")


def _per_delta(values: dict[str, float], prefix: str, deltas: list[int]) -> dict[int, float] | None:
    found = {delta: values[f"{prefix}@{delta}"] for delta in deltas if f"{prefix}@{delta}" in values}
    return found or None


def at_validation_tau(val: EvaluationResult, test: EvaluationResult) -> dict[str, Any]:
    """Test metrics at the τ that maximises each curve on validation.

    Returns ``{"tau": {curve key: τ}, "metrics": {...}}`` where ``metrics`` uses the names of the oracle
    fields: ``max_box_acc`` / ``max_box_acc_v2_per_iou`` / ``top1_loc`` … per δ, ``max_box_acc_v1``,
    ``max_box_acc_v2``, ``gt_known_loc``, ``f1_pos_best``, ``f1_neg_best``, ``iou_pos_best``, ``miou_best``.
    """
    _check_grids(val, test)
    taus = test.curves["tau"]
    chosen = {key: index for key, index in tau_indices(val).items() if key in test.curves}
    values = {key: float(test.curves[key][index]) for key, index in chosen.items()}
    deltas = list(test.config["iou_thresholds"])
    metrics: dict[str, Any] = {}
    for name, prefix in (
        ("max_box_acc", "box_acc"),
        ("max_box_acc_v2_per_iou", "box_acc_v2"),
        ("top1_loc", "top1_loc"),
        ("top5_loc", "top5_loc"),
        ("top1_loc_v2", "top1_loc_v2"),
        ("top5_loc_v2", "top5_loc_v2"),
    ):
        metrics[name] = _per_delta(values, prefix, deltas)
    if metrics["max_box_acc"]:
        metrics["max_box_acc_v1"] = metrics["gt_known_loc"] = metrics["max_box_acc"].get(50)
    if metrics["max_box_acc_v2_per_iou"] and len(metrics["max_box_acc_v2_per_iou"]) == len(deltas):
        metrics["max_box_acc_v2"] = float(np.mean(list(metrics["max_box_acc_v2_per_iou"].values())))
    for name in _PIXEL_BEST:
        if name in values:
            metrics[f"{name}_best"] = values[name]
    return {
        "tau": {key: float(taus[index]) for key, index in chosen.items()},
        "metrics": {key: value for key, value in metrics.items() if value is not None},
    }


def validation_tau_indices(val_tau: dict[str, Any], taus: list[float]) -> dict[str, int]:
    """The τ-grid positions of the thresholds recorded by :func:`at_validation_tau` (``val_tau["tau"]``)."""
    grid = np.asarray(taus)
    return {key: int(np.argmin(np.abs(grid - tau))) for key, tau in val_tau["tau"].items()}


def headline_indices(metrics: dict[str, Any], oracle: bool = False) -> dict[str, int]:
    """τ positions of a ``metrics.json``'s curves: the validation τ where recorded (unless ``oracle``), else
    the split's own best τ."""
    curves = metrics["curves"]
    indices = {
        key: int(np.nanargmax(np.asarray(c, dtype=float))) for key, c in curves.items() if key != "tau"
    }
    if "val_tau" in metrics and not oracle:
        indices.update(validation_tau_indices(metrics["val_tau"], curves["tau"]))
    return indices


def write_evaluation(out_dir: Path, payload: dict[str, Any], evaluator: WSOLEvaluator) -> None:
    """``metrics.json``, and ``per_image.npz`` / ``per_image.csv`` when the evaluator kept per-image
    statistics, into ``out_dir``, each atomically."""
    if evaluator.config.per_image:
        per_image = evaluator.per_image()
        per_image.save(out_dir / PER_IMAGE_FILE)
        per_image.write_csv(out_dir / "per_image.csv", per_image.values_at(headline_indices(payload)))
    text = json.dumps(payload, indent=2, sort_keys=True, default=float) + "\n"
    atomic_write_text(out_dir / METRICS_FILE, text)
