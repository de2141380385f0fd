"""ADL: the two maps on a hand-built tensor, the coin, identity at evaluation, placement in the backbone."""

from __future__ import annotations

import math

import pytest
import torch

from wsol.methods import build_method
from wsol.methods.adl import ADL, AttentionDropout, attention_maps


def _features() -> torch.Tensor:
    # Channel means: [[1, 4], [3.5, 0]] → max 4; γ 0.8 → drop where mean ≥ 3.2: pixels (0,1) and (1,0).
    return torch.tensor([[[[2.0, 6.0], [3.0, 0.0]], [[0.0, 2.0], [4.0, 0.0]]]])


def test_drop_mask_and_importance_map_hand_computed() -> None:
    drop, importance = attention_maps(_features(), gamma=0.8)
    assert torch.equal(drop, torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]))
    expected = torch.tensor([[1.0, 4.0], [3.5, 0.0]]).apply_(lambda v: 1 / (1 + math.exp(-v)))
    torch.testing.assert_close(importance, expected[None, None])


def test_coin_chooses_the_map_and_evaluation_is_the_identity() -> None:
    features = _features()
    drop, importance = attention_maps(features, gamma=0.8)
    always_drop, never_drop = AttentionDropout(1.0, 0.8).train(), AttentionDropout(0.0, 0.8).train()
    torch.testing.assert_close(always_drop(features), features * drop)
    torch.testing.assert_close(never_drop(features), features * importance)
    assert always_drop.eval()(features) is features
    halves = AttentionDropout(0.5, 0.8).train()
    outcomes = [torch.equal(halves(features), features * drop) for _ in range(200)]
    assert 70 < sum(outcomes) < 130  # one coin per forward, P(drop) = 0.5


def test_method_places_a_layer_at_each_insertion_point_and_is_plain_cam_at_evaluation() -> None:
    method = build_method("adl", 3, {"backbone": "tiny", "drop_rate": 1.0, "threshold": 0.0})
    assert isinstance(method, ADL) and len(method.adl_layers) == 2
    images = torch.randn(2, 3, 32, 32)
    # γ = 0 drops every pixel ≥ 0 · max, i.e. every non-negative channel mean: post-ReLU features all vanish.
    assert torch.equal(method(images).logits, method.classifier.head(torch.zeros(2, 64, 4, 4)).logits)
    plain = build_method("cam", 3, {"backbone": "tiny"})
    plain.load_state_dict(method.state_dict())
    method.eval(), plain.eval()
    torch.testing.assert_close(method.predict(images).maps, plain.predict(images).maps)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        build_method("adl", 3, {"backbone": "tiny", "drop_rate": 2.0})
    with pytest.raises(ValueError, match="no insertion point"):
        build_method("adl", 3, {"backbone": "tiny", "points": ["layer1.0"]})
