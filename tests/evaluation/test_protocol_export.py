"""Validation-chosen τ (hand-computed), per-image statistics, COCO export and the comparison of runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.export import ImagePrediction, rle_encode, write_coco, write_map
from wsol.evaluation.protocol import at_validation_tau
from wsol.report.compare import Run, compare, markdown, paired_bootstrap

CONFIG = EvaluatorConfig(cam_curve_interval=0.01, normalize=False, iou_thresholds=(30, 50, 70))


def _evaluate(maps: np.ndarray, masks: np.ndarray, boxes: list[list[float]], per_image: bool = False):
    evaluator = WSOLEvaluator(EvaluatorConfig(**{**CONFIG.__dict__, "per_image": per_image}))
    evaluator.update(
        torch.from_numpy(maps[None]),
        masks=torch.from_numpy(masks[None].astype(np.float32)),
        boxes=[np.array([boxes])],
    )
    return evaluator.compute()


def test_validation_tau_applied_to_test_hand_computed() -> None:
    # Validation: 0.6 on the object (left half), 0.2 elsewhere. Pixel metrics are perfect for τ in (0.2, 0.6]:
    # the first such grid point, 0.21, is chosen. Box τ is relative to the map's maximum (wsolevaluation's
    # rule): the box is exact once τ * 0.6 > 0.2, first at τ = 0.34 (at δ 70; the whole-image box, IoU 0.5,
    # already passes δ 50).
    val_map = np.where(np.arange(10) < 5, 0.6, 0.2)[None].repeat(10, 0)
    val = _evaluate(val_map, val_map > 0.5, [0, 0, 5, 10])
    # Test: a ramp, column j scores j / 10; object mask = columns >= 5, object box = columns 7..9.
    ramp = (np.arange(10) / 10)[None].repeat(10, 0)
    test = _evaluate(ramp, ramp >= 0.5, [7, 0, 10, 10])
    chosen = at_validation_tau(val, test)
    assert chosen["tau"]["f1_pos"] == pytest.approx(0.21) and chosen["tau"]["f1_neg"] == pytest.approx(0.21)
    assert chosen["tau"]["box_acc@70"] == pytest.approx(0.34)
    metrics = chosen["metrics"]
    # τ = 0.21 predicts columns 3..9: tp 50, fp 20, fn 0, tn 30.
    assert metrics["f1_pos_best"] == pytest.approx(100 * 100 / 120)
    assert metrics["f1_neg_best"] == pytest.approx(100 * 60 / 80)
    # δ 70: τ 0.34 keeps scores above 0.34 * 0.9 = 0.306: columns 4..9 vs ground truth 7..9, a miss.
    # δ 50: validation picks τ = 0 (its whole-image box passes); the test's whole-image box is a miss.
    assert chosen["tau"]["box_acc@50"] == 0
    assert metrics["max_box_acc"][70] == 0 and metrics["max_box_acc"][50] == 0
    assert test.f1_pos_best == pytest.approx(100)


def test_validation_and_test_must_share_the_tau_grid() -> None:
    ramp = (np.arange(10) / 10)[None].repeat(10, 0)
    test = _evaluate(ramp, ramp >= 0.5, [7, 0, 10, 10])
    other = WSOLEvaluator(EvaluatorConfig(cam_curve_interval=0.05, normalize=False))
    other.update(torch.from_numpy(ramp[None]), masks=torch.from_numpy((ramp >= 0.5)[None].astype(np.float32)))
    with pytest.raises(ValueError, match="different τ grids"):
        at_validation_tau(other.compute(), test)


def _batch(seed: int, n: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 16, 16), np.float32)
    boxes = []
    for i in range(n):
        x, y = rng.integers(0, 8, 2)
        masks[i, y : y + 8, x : x + 8] = 1
        boxes.append(np.array([[x, y, x + 8, y + 8]], np.float64))
    maps = np.clip(masks * 0.5 + rng.random((n, 16, 16)) * 0.7, 0, 1)
    return {
        "maps": torch.from_numpy(maps),
        "masks": torch.from_numpy(masks),
        "boxes": boxes,
        "labels": torch.arange(n) % 3,
        "logits": torch.from_numpy(rng.normal(size=(n, 3))),
    }


def test_per_image_mode_gives_the_same_metrics_and_rejects_bad_ids() -> None:
    batch = _batch(0)
    plain = WSOLEvaluator(CONFIG)
    plain.update(**batch)
    per_image = WSOLEvaluator(EvaluatorConfig(**{**CONFIG.__dict__, "per_image": True}))
    with pytest.raises(ValueError, match="image_ids: expected 6 ids"):
        per_image.update(**batch, image_ids=["a"])
    per_image.update(**batch, image_ids=[f"img{i}" for i in range(6)])
    first, second = plain.compute().to_dict(), per_image.compute().to_dict()
    for key in ("pxap", "max_box_acc_v2", "f1_pos_best", "f1_neg", "top1_acc", "miou"):
        assert second[key] == pytest.approx(first[key], abs=1e-9), key
    stats = per_image.per_image()
    assert stats.image_id.tolist() == [f"img{i}" for i in range(6)] and len(stats) == 6
    assert stats.predicted.tolist() == batch["logits"].argmax(1).tolist()
    with pytest.raises(ValueError, match="per_image=True"):
        plain.per_image()


def test_rle_hand_computed_and_read_by_pycocotools(tmp_path: Path) -> None:
    # Column-major runs: [[0, 1], [1, 1]] -> 0 | 1 1 1 ; [[1, 0], [0, 0]] starts with an empty background run.
    assert rle_encode(np.array([[0, 1], [1, 1]]))["counts"] == [1, 3]
    assert rle_encode(np.array([[1, 0], [0, 0]]))["counts"] == [0, 1, 3]
    mask = np.zeros((6, 8), bool)
    mask[1:3, 1:4] = True
    mask[4:6, 5:8] = True
    boxes = [[1.0, 1.0, 4.0, 3.0], [5.0, 4.0, 8.0, 6.0]]
    path = write_coco(
        tmp_path / "c.json", [ImagePrediction("a/b.png", 8, 6, 2, 0.9, boxes, mask)], ["x", "y", "z"]
    )
    coco = COCO(str(path))
    assert coco.loadCats(3)[0]["name"] == "z"
    first, second = coco.loadAnns(coco.getAnnIds())
    assert first["bbox"] == [1.0, 1.0, 3.0, 2.0] and first["score"] == 0.9 and first["category_id"] == 3
    expected = np.zeros_like(mask)
    expected[1:3, 1:4] = True
    assert np.array_equal(coco.annToMask(first).astype(bool), expected)
    assert np.array_equal(coco.annToMask(first) | coco.annToMask(second), mask)
    with pytest.raises(ValueError, match="without '..'"):
        write_map(tmp_path, "../escape", np.zeros((2, 2)))


def _run(label: str, seed: int, batch: dict, shift: float = 0.0) -> Run:
    evaluator = WSOLEvaluator(EvaluatorConfig(**{**CONFIG.__dict__, "per_image": True}))
    evaluator.update(**{**batch, "maps": (batch["maps"] + shift).clamp(0, 1)}, image_ids=list("abcdef"))
    metrics = evaluator.compute().to_dict()
    metrics["provenance"] = {"label": label, "seed": seed}
    return Run(Path(label), label, seed, metrics, evaluator.per_image())


def test_compare_mean_sd_and_paired_differences() -> None:
    batch = _batch(1)
    a0, a1 = _run("A", 0, batch), _run("A", 1, batch, shift=0.05)
    b0 = _run(
        "B", 0, _batch(2) | {"masks": batch["masks"], "boxes": batch["boxes"], "labels": batch["labels"]}
    )
    document = compare([a0, a1, b0], resamples=300)
    entry = document["methods"][0]["metrics"]["f1_pos"]["value"]
    values = [a0.metrics["f1_pos"], a1.metrics["f1_pos"]]
    assert entry["mean"] == pytest.approx(np.mean(values))
    assert entry["sd"] == pytest.approx(abs(values[0] - values[1]) / np.sqrt(2))
    (pair,) = document["paired"]
    expected = np.mean(values) - b0.metrics["f1_pos"]
    assert pair["metrics"]["f1_pos"]["difference"] == pytest.approx(expected)
    assert pair["metrics"]["pxap"]["difference"] == pytest.approx(
        np.mean([a0.metrics["pxap"], a1.metrics["pxap"]]) - b0.metrics["pxap"]
    )
    for item in pair["metrics"].values():
        assert item["low"] - 1e-9 <= item["difference"] <= item["high"] + 1e-9
    same = paired_bootstrap([a0], [_run("C", 0, batch)], resamples=100)
    assert same is not None
    assert all(v["low"] == v["difference"] == v["high"] == 0 for v in same["metrics"].values())
    text = markdown(document)
    assert f"{entry['mean']:.2f} ± {entry['sd']:.2f}" in text and "| A − B | 6 | oracle |" in text
    json.dumps(document)  # JSON-serialisable
