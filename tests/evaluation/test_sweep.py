"""The box sweep (``level_sets``) at every level against ``findContours`` itself, on hand-built maps, and the
batched evaluator against per-image evaluation and the naive reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from _wsolevaluation_naive import naive_max_box_acc, naive_normalize, naive_pxap

from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.boxes import level_ious

pytestmark = pytest.mark.skipif(level_ious is None, reason="the sweep engine needs numba")


def _iou(a: tuple[int, ...], b: list[int]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1) * max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return 0.0 if union <= 0 else inter / union


def _contour_levels(q: np.ndarray, gt: list[list[int]], parity: bool) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU of the largest contour's box and of every contour's box at each of the 256 levels, from one
    ``findContours`` per level (-1 where ``q > t`` is empty)."""
    height, width = q.shape
    largest, every = np.full(256, -1.0), np.full(256, -1.0)
    for t in range(256):
        contours = cv2.findContours((q > t).astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if not contours:
            continue
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            end = (min(x + w, width - 1), min(y + h, height - 1)) if parity else (x + w - 1, y + h - 1)
            boxes.append((x, y, *end))
        best = [max(_iou(box, g) for g in gt) for box in boxes]
        largest[t] = best[int(np.argmax([cv2.contourArea(c) for c in contours]))]
        every[t] = max(best)
    return largest, every


def _ring_with_a_dot() -> np.ndarray:
    """A ring (200) around a hole (0) holding a dot (150): the dot is a component nested in the hole."""
    q = np.zeros((9, 9), np.uint8)
    q[1:-1, 1:-1] = 200
    q[2:-2, 2:-2] = 0
    q[4, 4] = 150
    return q


def _maps() -> list[tuple[str, np.ndarray, list[list[int]]]]:
    rng = np.random.default_rng(3)
    coarse = rng.random((5, 5)).astype(np.float32)
    smooth = cv2.resize(coarse, (40, 40), interpolation=cv2.INTER_CUBIC)
    smooth = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)
    fragmented = cv2.resize(rng.integers(0, 256, (10, 10)).astype(np.uint8), (40, 40), cv2.INTER_NEAREST)
    noise = (rng.integers(0, 256, (24, 24)) * (rng.random((24, 24)) > 0.3)).astype(np.uint8)
    return [
        # the GT box is the nested dot's own box: only the foreground sweep finds IoU 1 (in both conventions)
        ("nested dot, parity", _ring_with_a_dot(), [[4, 4, 5, 5]]),
        ("nested dot, inclusive", _ring_with_a_dot(), [[4, 4, 4, 4]]),
        ("nested dot, large GT", _ring_with_a_dot(), [[0, 0, 8, 8]]),
        ("smooth, two GT boxes", smooth, [[2, 3, 20, 30], [25, 0, 39, 12]]),
        ("fragmented", fragmented, [[8, 8, 31, 27]]),
        ("noise, small GT", noise, [[5, 5, 7, 8]]),
        ("constant", np.full((12, 12), 128, np.uint8), [[0, 0, 11, 11]]),
        ("all zero", np.zeros((12, 12), np.uint8), [[3, 3, 6, 6]]),
    ]


@pytest.mark.parametrize(("name", "q", "gt"), _maps(), ids=[m[0] for m in _maps()])
def test_level_ious_equal_find_contours_at_every_level(name: str, q: np.ndarray, gt: list[list[int]]) -> None:
    for parity in (True, False):
        expected_largest, expected_every = _contour_levels(q, gt, parity)
        largest, every = level_ious(q, np.array(gt), parity)
        np.testing.assert_array_equal(largest, expected_largest, err_msg=f"{name} V1 parity={parity}")
        np.testing.assert_array_equal(every, expected_every, err_msg=f"{name} V2 parity={parity}")


def test_a_nested_component_that_beats_every_other_box_is_found() -> None:
    """The bound that skips the foreground sweep must not skip it here: at t < 150 the best V2 box is the
    dot nested in the ring's hole."""
    every = level_ious(_ring_with_a_dot(), np.array([[4, 4, 5, 5]]), True)[1]
    assert (every[:150] == 1.0).all() and every[150] < 1.0


def _hand_built_batch() -> dict:
    """Smooth, fragmented, constant, NaN, two-GT-box and no-object images with masks, 32 px."""
    rng = np.random.default_rng(7)
    size = 32
    smooth = cv2.resize(rng.random((4, 4)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    fragmented = cv2.resize(rng.random((8, 8)).astype(np.float32), (size, size), cv2.INTER_NEAREST)
    nan = smooth.copy()
    nan[3, 5] = np.nan
    maps = np.stack([smooth, fragmented, np.full((size, size), 0.3, np.float32), nan, smooth.T, fragmented.T])
    boxes = [
        np.array([[4, 4, 20, 25]]),
        np.array([[0, 0, 31, 31]]),
        np.array([[10, 10, 12, 12]]),
        np.array([[2, 2, 30, 9]]),
        np.array([[1, 1, 8, 8], [15, 12, 31, 30]]),
        np.array([[5, 5, 9, 9]]),
    ]
    masks = np.zeros_like(maps)
    for mask, box in zip(masks, boxes, strict=True):
        x0, y0, x1, y1 = box[0]
        mask[y0 : y1 + 1, x0 : x1 + 1] = 1
    has_object = np.array([True, True, True, True, True, False])
    labels = np.arange(6) % 3
    logits = rng.normal(size=(6, 3))
    return {
        "maps": maps,
        "boxes": boxes,
        "masks": masks,
        "has_object": has_object,
        "labels": labels,
        "logits": logits,
    }


def _evaluate(batch: dict, images: list[range]) -> WSOLEvaluator:
    evaluator = WSOLEvaluator(
        EvaluatorConfig(parity="wsolevaluation", cam_curve_interval=0.01, frame_size=32)
    )
    for part in images:
        index = list(part)
        evaluator.update(
            batch["maps"][index],
            masks=batch["masks"][index],
            boxes=[batch["boxes"][i] for i in index],
            labels=batch["labels"][index],
            logits=batch["logits"][index],
            has_object=batch["has_object"][index],
        )
    return evaluator


def test_one_batched_update_equals_images_one_by_one_and_the_naive_reference() -> None:
    batch = _hand_built_batch()
    batched = _evaluate(batch, [range(6)])
    one_by_one = _evaluate(batch, [range(i, i + 1) for i in range(6)])
    for name, value in batched.stats.items():
        np.testing.assert_array_equal(value, one_by_one.stats[name], err_msg=name)
    result = batched.compute()
    assert result.num_degenerate_maps == 2 and result.num_box_images == 5
    taus = np.arange(0, 1, 0.01)
    scoremaps = [naive_normalize(m) for m in batch["maps"][:5]]
    largest, every = naive_max_box_acc(
        scoremaps, [b.tolist() for b in batch["boxes"][:5]], taus, [30, 50, 70]
    )
    assert [result.max_box_acc[d] for d in (30, 50, 70)] == pytest.approx(largest, abs=1e-9)
    assert [result.max_box_acc_v2_per_iou[d] for d in (30, 50, 70)] == pytest.approx(every, abs=1e-9)
    masks = [m.astype(np.uint8) for m in batch["masks"][:5]]
    assert result.pxap == pytest.approx(naive_pxap(scoremaps, masks, taus), abs=1e-9)


def test_a_batch_tensor_gives_the_numpy_batch_statistics() -> None:
    batch = _hand_built_batch()
    numpy_stats = _evaluate(batch, [range(6)]).stats
    as_tensors = dict(batch, maps=torch.from_numpy(batch["maps"]), masks=torch.from_numpy(batch["masks"]))
    tensor_stats = _evaluate(as_tensors, [range(6)]).stats
    for name, value in numpy_stats.items():
        np.testing.assert_array_equal(value, tensor_stats[name], err_msg=name)
