"""CutMix: the box and its recomputed λ, the pasted pixels, and the mixed cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsol.methods import build_method
from wsol.methods.cutmix import CutBox, CutMix, cut_box


def test_cut_box_hand_computed_and_clipped() -> None:
    # λ 0.75 on 8×8: side 8·√0.25 = 4; centre (row 1, col 6) → rows 1-2..1+2 clipped to 0..3, cols 4..8.
    assert cut_box(0.75, 8, 8, 1, 6) == CutBox(0, 3, 4, 8, 1.0 - 12 / 64)
    # Unclipped, non-square: 10×20, λ 0.36 → √0.64 = 0.8: 8 × 16 box around (5, 10), λ = 1 − 128/200.
    box = cut_box(0.36, 10, 20, 5, 10)
    assert (box.y0, box.y1, box.x0, box.x1) == (1, 9, 2, 18)
    assert math.isclose(box.lam, 0.36)
    assert cut_box(1.0, 8, 8, 3, 3).lam == 1.0  # λ = 1: empty box


def test_mix_pastes_the_partner_inside_the_box_only() -> None:
    method = build_method("cutmix", 3, {"backbone": "tiny"})
    assert isinstance(method, CutMix)
    images = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1, 1).expand(4, 3, 16, 16).contiguous()
    for _ in range(10):
        mixed, perm, box = method.mix(images)
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[box.y0 : box.y1, box.x0 : box.x1] = True
        assert math.isclose(box.lam, 1 - int(inside.sum()) / 256)
        for b in range(4):
            assert torch.all(mixed[b][:, inside] == perm[b].item())
            assert torch.all(mixed[b][:, ~inside] == b)


def test_loss_is_the_lambda_weighted_cross_entropy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    method = build_method("cutmix", 3, {"backbone": "tiny"})
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 1])
    perm = torch.tensor([2, 3, 0, 1])
    mixed = images.clone()
    mixed[:, :, 2:10, 4:8] = images[perm, :, 2:10, 4:8]
    box = CutBox(2, 10, 4, 8, 1 - 32 / 256)
    monkeypatch.setattr(method, "mix", lambda x: (mixed, perm, box))
    logits = method(mixed).logits
    expected = box.lam * F.cross_entropy(logits, labels) + (1 - box.lam) * F.cross_entropy(
        logits, labels[perm]
    )
    torch.testing.assert_close(method.training_loss({"image": images, "label": labels}).total, expected)


def test_prob_zero_never_mixes() -> None:
    method = build_method("cutmix", 3, {"backbone": "tiny", "prob": 0.0})
    images = torch.randn(4, 3, 8, 8)
    mixed, _, box = method.mix(images)
    assert mixed is images and box.lam == 1.0


@pytest.mark.parametrize("options", [{"beta": 0.0}, {"prob": -0.1}])
def test_bad_options_are_rejected(options: dict) -> None:
    with pytest.raises(ValueError, match="beta|prob"):
        build_method("cutmix", 3, {"backbone": "tiny", **options})
