"""ASS: Algorithm 1's three categories and their masks on hand-built attention maps; Eq. 12; evaluation."""

from __future__ import annotations

import pytest
import torch

from wsol.methods import build_method
from wsol.methods.ass import ASS, HIDE, SCATTERED, SMALL_OR_COVERED, SelectionConfig, dispersion, select_masks


def _scene(top: list[tuple[int, int]], target: bool) -> torch.Tensor:
    """One-channel 10×10 features (so A is the map): 0.1 background, 0.5 target block, 1.0 at ``top``."""
    attention = torch.full((10, 10), 0.1)
    if target:
        attention[2:8, 2:7] = 0.5  # 30 pixels ≥ 0.3·max
    for row, col in top:
        attention[row, col] = 1.0
    return attention[None, None]


BLOCK = [(4, 4), (4, 5), (5, 4), (5, 5)]


def test_compact_peak_in_a_large_target_is_hidden() -> None:
    features = _scene(BLOCK, target=True)
    masks, categories = select_masks(features, SelectionConfig())
    assert categories.tolist() == [HIDE]
    assert torch.equal(masks, (features < 0.8).float())


def test_scattered_peaks_hide_peaks_and_background() -> None:
    features = _scene([(0, 0), (0, 9), (9, 0), (9, 9)], target=True)
    masks, categories = select_masks(features, SelectionConfig())
    assert categories.tolist() == [SCATTERED]
    assert torch.equal(masks, (features == 0.5).float())  # peaks (≥ 0.8) and background (< 0.2) hidden


def test_small_target_or_covered_target_keeps_everything() -> None:
    small = _scene(BLOCK, target=False)  # target = the 4 peak pixels: 4 % of the map < 20 %
    covered = _scene([(r, c) for r in range(3, 6) for c in range(2, 6)], target=True)  # 12/30 = 40 % > 30 %
    masks, categories = select_masks(torch.cat([small, covered]), SelectionConfig())
    assert categories.tolist() == [SMALL_OR_COVERED, SMALL_OR_COVERED]
    assert torch.equal(masks, torch.ones(2, 1, 10, 10))


def test_dispersion_hand_computed() -> None:
    points = torch.zeros(1, 28, 28, dtype=torch.bool)
    points[0, 0, 0] = points[0, 0, 2] = True  # Var X = 1, Var Y = 0; both isolated
    assert dispersion(points, SelectionConfig()).item() == pytest.approx(1.0)
    assert dispersion(points, SelectionConfig(mu2=1.0)).item() == pytest.approx(3.0)
    small = torch.zeros(1, 14, 14, dtype=torch.bool)
    small[0, 0, 0] = small[0, 0, 1] = True  # one cell apart on a 14 grid = 2 on the 28 grid: Var X = 1
    assert dispersion(small, SelectionConfig()).item() == pytest.approx(1.0)


def test_method_layers_act_in_training_only() -> None:
    method = build_method("ass", 3, {"backbone": "tiny", "selection": {"discriminative": 0.9}})
    assert isinstance(method, ASS) and len(method.selection_layers) == 2
    assert method.selection_layers[0].config.discriminative == 0.9
    features = _scene(BLOCK, target=True)
    hidden = method.selection_layers[0].train()(features)
    assert torch.equal(hidden, features * (features < 0.9))
    images = torch.randn(2, 3, 32, 32)
    plain = build_method("cam", 3, {"backbone": "tiny"})
    plain.load_state_dict(method.state_dict())
    method.eval(), plain.eval()
    torch.testing.assert_close(method.predict(images).maps, plain.predict(images).maps)


def test_bad_selection_is_rejected() -> None:
    with pytest.raises(ValueError, match="small_area"):
        SelectionConfig(small_area=1.5)
