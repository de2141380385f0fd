"""AMH: expected pixels, hiding windows, the dual mask on a hand-built scene, and its use by the selection."""

from __future__ import annotations

import math

import pytest
import torch

from wsol.methods import build_method
from wsol.methods.amh import AMH, DualHiding, area_mask, dual_hiding_mask, expected_cell
from wsol.methods.ass import HIDE, SelectionConfig, select_masks


def _soft_argmax_by_hand(values: list[list[float]]) -> tuple[int, int]:
    total = sum(math.exp(v) for row in values for v in row)
    row = sum(r * math.exp(v) for r, line in enumerate(values) for v in line) / total
    col = sum(c * math.exp(v) for line in values for c, v in enumerate(line)) / total
    return round(row), round(col)


def _scene() -> torch.Tensor:
    """Two 7×7 channels at 2, plus a peak of 5 at (1, 1) in channel 0 and of 8 at (5, 4) in channel 1."""
    features = torch.full((1, 2, 7, 7), 2.0)
    features[0, 0, 1, 1] += 5.0
    features[0, 1, 5, 4] += 8.0
    return features


def test_expected_cell_and_area_mask() -> None:
    probabilities = torch.zeros(1, 5, 6)
    probabilities[0, 1, 1] = probabilities[0, 3, 4] = 0.5  # mean (2, 2.5) → rounds to (2, 2)
    assert expected_cell(probabilities).tolist() == [[2, 2]]
    mask = area_mask(torch.tensor([[0, 5]]), (4, 6), 3)  # window clipped at the corner
    expected = torch.ones(4, 6)
    expected[0:2, 4:6] = 0.0
    assert torch.equal(mask[0, 0], expected)


def test_dual_mask_on_a_hand_built_scene() -> None:
    features = _scene()
    # Channel weights Σ s·F: channel 1's peak (8) dominates → top channel 1; its expected pixel:
    channel = _soft_argmax_by_hand(features[0, 1].tolist())
    # Spatial region: soft-argmax of the softmax of A = channel mean.
    spatial = _soft_argmax_by_hand(features[0].mean(0).tolist())
    assert channel == (5, 4) and spatial == (4, 3)
    attention = features[0].mean(0)
    expected = (attention < 0.9 * attention.max()).float()
    for row, col in (channel, spatial):
        expected[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = 0.0
    assert torch.equal(dual_hiding_mask(features, 0.9, 3)[0, 0], expected)


def test_selection_hides_with_the_dual_mask_in_the_hiding_category() -> None:
    features = _scene()
    config = SelectionConfig(discriminative=0.9)
    _, categories = select_masks(features, config)
    assert categories.tolist() == [HIDE]  # one peak pixel, the whole map is "target"
    layer = DualHiding(config, 3).train()
    assert torch.equal(layer(features), features * dual_hiding_mask(features, 0.9, 3))
    assert layer.eval()(features) is features


def test_method_builds_layers_at_the_points_and_rejects_bad_area() -> None:
    method = build_method("amh", 3, {"backbone": "tiny", "selection": {"discriminative": 0.9}})
    assert isinstance(method, AMH) and len(method.hiding_layers) == 2
    with pytest.raises(ValueError, match="area"):
        build_method("amh", 3, {"backbone": "tiny", "area": 0})
