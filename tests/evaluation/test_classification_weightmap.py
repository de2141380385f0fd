"""Top-k classification and the weight-map paper's box rule / score S, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.evaluation import box_from_map_weightmap, mean_weightmap_score
from wsol.evaluation.classification import topk_correct


def test_topk_hand_computed_with_ties_and_few_classes() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [1.0, 1.0, 1.0], [0.3, 0.2, 0.1]])
    labels = torch.tensor([1, 1, 2])
    assert topk_correct(logits, labels, 1).tolist() == [True, False, False]  # ties go to class 0
    assert topk_correct(logits, labels, 2).tolist() == [True, True, False]
    assert topk_correct(logits, labels, 5).tolist() == [True, True, True]  # k capped at K = 3


def test_topk_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        topk_correct(torch.zeros(2, 3), torch.tensor([0, 3]), 1)
    with pytest.raises(ValueError, match="logits"):
        topk_correct(torch.zeros(2), torch.tensor([0, 1]), 1)


def test_weightmap_box_and_score_hand_computed() -> None:
    m = np.zeros((20, 20))
    m[2:8, 3:9] = 1.0  # 36 px at grey 255: the largest contour
    m[15:17, 15:17] = 0.5  # 4 px at grey 128 (> int(25.5) = 25), outside the box
    m[12, 2] = 0.05  # grey 13 <= 25: zeroed by the threshold, no mass
    box, score = box_from_map_weightmap(m)
    assert box == (3, 2, 9, 8)  # [x, y, x + w, y + h]
    assert score == pytest.approx(36 * 255 / (36 * 255 + 4 * 128))


def test_weightmap_constant_map_has_no_contour() -> None:
    assert box_from_map_weightmap(torch.full((8, 8), 0.3)) == ((0, 0, 1, 1), 0.0)
    assert mean_weightmap_score(torch.zeros(2, 8, 8)) == 0.0
    with pytest.raises(ValueError, match="weight_map"):
        box_from_map_weightmap(np.full((4, 4), np.nan))


def test_evaluator_averages_the_weightmap_score_over_images_and_processes() -> None:
    """``EvaluatorConfig(weightmap_score=True)`` reports the mean of seed 002's S over every map, merged."""
    from wsol.evaluation import EvaluatorConfig, WSOLEvaluator, box_from_map_weightmap

    maps = torch.zeros(3, 16, 16, dtype=torch.float64)
    maps[0, 2:6, 2:6] = 1.0  # one blob: all mass inside its own box, S = 1
    maps[1, 1:3, 1:3] = 1.0
    maps[1, 10:15, 10:15] = (
        0.5  # two blobs: the largest box holds 128*25 of 128*25 + 255*4 grey mass -> S < 1
    )
    maps[2] = torch.linspace(0, 1, 16).repeat(16, 1)  # ramp
    expected = [box_from_map_weightmap(m)[1] for m in maps]
    assert expected[0] == pytest.approx(1.0)
    assert expected[1] == pytest.approx((128 * 25) / (128 * 25 + 255 * 4), abs=1e-9)  # rint(127.5) = 128
    first, second = (WSOLEvaluator(EvaluatorConfig(weightmap_score=True)) for _ in range(2))
    first.update(maps[:2])
    second.update(maps[2:])
    assert first.merge(second).compute().s_score == pytest.approx(sum(expected) / 3, abs=1e-12)
    assert WSOLEvaluator(EvaluatorConfig()).compute().s_score is None
