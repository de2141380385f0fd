"""SPG: ternary masks and ignored pixels on hand-built maps, the masked BCE, the branches' targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wsol.methods import build_method
from wsol.methods.spg import SPG, TernaryMask, masked_bce, ternary_mask


def test_ternary_mask_hand_built() -> None:
    # 6×6 map: 36 pixels. Rows of values 0.9 (x12), 0.5 (x12), 0.005 (x12): h 0.7, l 0.01.
    maps = torch.tensor([0.9] * 12 + [0.5] * 12 + [0.005] * 12).reshape(1, 6, 6)
    mask = ternary_mask(maps, 0.7, 0.01)
    # Only 12 < 30 pixels exceed h: the fallback keeps those > 0.7·max = 0.63, the same 12 here.
    assert torch.equal(mask.target.flatten(), torch.tensor([1.0] * 12 + [0.0] * 24))
    assert torch.equal(mask.valid.flatten(), torch.tensor([True] * 12 + [False] * 12 + [True] * 12))


def test_fallback_lowers_the_positive_threshold_when_fewer_than_30_pass() -> None:
    values = torch.tensor([0.6] * 10 + [0.45] * 30 + [0.2] * 24)  # 64 pixels, none > h = 0.7
    mask = ternary_mask(values.reshape(1, 8, 8), 0.7, 0.25)
    # Fallback: > 0.7·0.6 = 0.42 → the 40 first pixels positive; 0.2 < l → 24 negatives; nothing ignored.
    assert torch.equal(mask.target.flatten(), torch.tensor([1.0] * 40 + [0.0] * 24))
    assert bool(mask.valid.all())
    many = torch.tensor([0.8] * 30 + [0.6] * 34).reshape(1, 8, 8)  # 30 pass: no fallback, 0.6 ignored
    assert int(ternary_mask(many, 0.7, 0.1).valid.sum()) == 30


def test_negative_wins_where_both_hold() -> None:
    maps = torch.full((1, 6, 6), 0.05)  # constant: fallback marks every pixel (0.05 > 0.035), l = 0.1 too
    mask = ternary_mask(maps, 0.7, 0.1)
    assert torch.equal(mask.target, torch.zeros(1, 6, 6)) and bool(mask.valid.all())


def test_masked_bce_ignores_undefined_pixels() -> None:
    logits = torch.tensor([[[2.0, -1.0], [0.5, 9.0]]])
    mask = TernaryMask(
        torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.tensor([[[True, True], [False, False]]])
    )
    expected = (
        F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(-1.0))
    ) / 2  # −log σ(2), −log(1−σ(−1))
    torch.testing.assert_close(masked_bce(logits, mask), expected)
    nothing = TernaryMask(mask.target, torch.zeros_like(mask.valid))
    assert masked_bce(logits, nothing).item() == 0.0


def test_loss_terms_and_map_of_the_method() -> None:
    method = build_method("spg", 3, {"backbone": "tiny", "branch_width": 8})
    assert isinstance(method, SPG)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    loss = method.training_loss({"image": images, "label": labels})
    assert set(loss.terms) == {"ce", "bce_b1", "bce_b2", "bce_c"}
    torch.testing.assert_close(loss.total, sum(loss.terms.values()))
    loss.total.backward()
    for module in (method.pre_b1, method.pre_b2, method.shared_b, method.branch_c):
        assert all(p.grad is not None for p in module.parameters())
    method.eval()
    assert all(tap.output is None for tap in method.taps)  # nothing kept past the step
    plain = build_method("cam", 3, {"backbone": "tiny"}).eval()
    plain.classifier.load_state_dict(method.classifier.state_dict())
    torch.testing.assert_close(method.predict(images, labels).maps, plain.predict(images, labels).maps)


def test_tap_points_must_be_two_declared_points() -> None:
    with pytest.raises(ValueError, match="tap_points"):
        build_method("spg", 3, {"backbone": "tiny", "tap_points": ["layer3.0"]})
