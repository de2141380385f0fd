"""Pixel metrics: PxAP against the naive np.histogram evaluator, hand-computed F1/IoU, PR curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _wsolevaluation_naive import naive_dice_curve, naive_pxap
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.pixel import bin_edges, image_histograms, pxap


def _evaluator(step: float = 0.01, **options: object) -> WSOLEvaluator:
    return WSOLEvaluator(EvaluatorConfig(cam_curve_interval=step, normalize=False, **options))


def test_histograms_match_np_histogram_including_edges() -> None:
    edges = bin_edges(np.arange(0, 1, 0.25))  # [0, .25, .5, .75, 1, 2, 3]
    scores = torch.tensor([[0.0, 0.25, 0.2499, 0.75, 1.0, 3.0, 3.5, -0.1]])
    everything = torch.ones_like(scores, dtype=torch.bool)
    positive, negative, _ = image_histograms(scores, everything, ~everything, edges)
    expected = np.histogram(scores.numpy().astype(np.float64), bins=edges)[0]
    np.testing.assert_array_equal(positive[0], expected)
    assert negative.sum() == 0


def test_pxap_perfect_and_uninformative_maps() -> None:
    scores = np.zeros((1, 8, 8))
    mask = np.zeros((1, 8, 8), bool)
    mask[0, :2] = True  # 16 of 64 pixels
    scores[0, :2] = 0.9
    evaluator = _evaluator()
    evaluator.update(torch.from_numpy(scores), masks=torch.from_numpy(mask))
    assert evaluator.compute().pxap == pytest.approx(100.0)
    constant = _evaluator()
    constant.update(torch.full((1, 8, 8), 0.5, dtype=torch.float64), masks=torch.from_numpy(mask))
    assert constant.compute().pxap == pytest.approx(25.0)  # precision 16/64 at the only recall step


def test_pxap_equals_the_naive_reference_on_random_maps_with_ignore() -> None:
    rng = np.random.default_rng(3)
    taus = np.arange(0, 1, 0.01)
    evaluator = _evaluator()
    maps, gts = [], []
    for _ in range(12):
        scoremap = rng.random((16, 16)).astype(np.float32) ** 2
        foreground = rng.random((16, 16)) < 0.3
        ignore = (rng.random((16, 16)) < 0.2) & ~foreground
        evaluator.update(
            torch.from_numpy(scoremap[None]),
            masks=torch.from_numpy(foreground[None]),
            ignore=torch.from_numpy((ignore | (rng.random((16, 16)) < 0.1) & foreground)[None]),
        )
        maps.append(scoremap)
        gts.append(np.where(ignore, 255, foreground.astype(np.uint8)))
    assert evaluator.compute().pxap == pytest.approx(naive_pxap(maps, gts, taus), abs=1e-9)


def test_pxap_without_positive_ground_truth_is_none() -> None:
    evaluator = _evaluator()
    evaluator.update(torch.rand(2, 6, 6), masks=torch.zeros(2, 6, 6))
    result = evaluator.compute()
    assert result.pxap is None
    assert result.num_mask_images == 2
    with pytest.raises(ValueError, match="no positive"):
        pxap(np.zeros(5), np.ones(5))


def test_f1_iou_at_the_threshold_hand_computed() -> None:
    scores = torch.tensor([[[0.9, 0.8, 0.1, 0.6]]], dtype=torch.float64)  # predicted fg (>= 0.5): 1, 1, 0, 1
    mask = torch.tensor([[[1.0, 0.0, 1.0, 1.0]]])  # tp = 2, fp = 1, fn = 1, tn = 0
    evaluator = _evaluator()
    evaluator.update(scores, masks=mask)
    result = evaluator.compute()
    assert result.f1_pos == pytest.approx(100 * 4 / 6)  # 2tp / (2tp + fp + fn)
    assert result.f1_neg == pytest.approx(0.0)  # tn = 0, fp + fn = 2
    assert result.iou_pos == pytest.approx(50.0)  # tp / (tp + fp + fn)
    assert result.miou == pytest.approx(25.0)
    assert result.pooled is not None and result.pooled["f1_pos"] == pytest.approx(100 * 4 / 6)


def test_empty_prediction_of_empty_ground_truth_is_perfect() -> None:
    evaluator = _evaluator()
    evaluator.update(torch.zeros(1, 5, 5), masks=torch.zeros(1, 5, 5))
    result = evaluator.compute()
    assert result.f1_pos == 100.0 and result.f1_neg == 100.0 and result.miou == 100.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_images=st.integers(1, 4))
def test_f1_curve_equals_a_per_threshold_loop(seed: int, n_images: int) -> None:
    rng = np.random.default_rng(seed)
    taus = np.arange(0, 1, 0.05)
    maps = [rng.random((7, 9)) for _ in range(n_images)]
    masks = [rng.random((7, 9)) < rng.random() for _ in range(n_images)]
    evaluator = _evaluator(step=0.05)
    evaluator.update(torch.from_numpy(np.stack(maps)), masks=torch.from_numpy(np.stack(masks)))
    result = evaluator.compute()
    np.testing.assert_allclose(result.curves["f1_pos"], naive_dice_curve(maps, masks, taus), atol=1e-9)
    assert result.f1_pos_best == pytest.approx(max(result.curves["f1_pos"]))


def test_pr_curves_of_a_perfectly_separating_map() -> None:
    scores = torch.zeros(1, 6, 6, dtype=torch.float64)
    scores[0, :3] = 0.8
    mask = scores > 0.5
    evaluator = _evaluator()
    evaluator.update(scores, masks=mask)
    curves = evaluator.compute().pr_curves
    assert len(curves["recall"]) == 101
    np.testing.assert_allclose(curves["precision_fg"], 1.0)
    np.testing.assert_allclose(curves["precision_bg"], 1.0)


def test_has_mask_excludes_images_and_masks_must_match_maps() -> None:
    evaluator = _evaluator()
    maps = torch.rand(3, 4, 4)
    evaluator.update(maps, masks=torch.ones(3, 1, 4, 4), has_mask=torch.tensor([True, False, True]))
    assert evaluator.compute().num_mask_images == 2
    with pytest.raises(ValueError, match="masks: expected shape"):
        evaluator.update(maps, masks=torch.ones(3, 5, 5))


def test_interpolated_precision_hand_computed() -> None:
    from wsol.evaluation.pixel import interpolated_precision

    tp, fp = (
        np.array([4.0, 3, 2, 0]),
        np.array([4.0, 1, 0, 0]),
    )  # (recall, precision): (1, .5), (.75, .75), (.5, 1)
    axis = np.array([0.0, 0.5, 0.6, 0.75, 1.0])
    np.testing.assert_allclose(interpolated_precision(tp, fp, 4, axis), [1, 1, 0.75, 0.75, 0.5])
    assert interpolated_precision(tp, fp, 0, axis) is None
    assert interpolated_precision(np.zeros(3), np.zeros(3), 4, axis) is None
