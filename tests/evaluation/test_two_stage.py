"""Two-stage threshold selection: seeds, contrast by hand, and the chosen τ on maps whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.evaluation.two_stage import TwoStageConfig, box_seeds, contrast, oracle_comparison, select_threshold


def _square_scene(ring: int, size: int = 15) -> tuple[np.ndarray, torch.Tensor]:
    """Map 1 − d/8 (d: Chebyshev distance to the centre); features: object [1, 0] for d < ring, background
    [0, 1] for d > ring, the ring halfway [1, 1]. The answer is the box whose edges lie on the ring."""
    centre = size // 2
    rows, cols = np.indices((size, size))
    distance = np.maximum(abs(rows - centre), abs(cols - centre))
    scoremap = (1.0 - distance / 8.0).astype(np.float32)
    inside = torch.from_numpy(distance <= ring).float()
    outside = torch.from_numpy(distance >= ring).float()
    return scoremap, torch.stack([inside, outside])


def test_seeds_are_the_foreground_pixels_on_the_box_edges() -> None:
    scoremap = np.zeros((6, 7), np.float32)
    scoremap[1:4, 2:6] = 1.0
    scoremap[2, 3] = 0.5
    box, seeds = box_seeds(scoremap, 0.3)
    assert box.tolist() == [2, 1, 5, 3]
    expected = {(r, c) for r in (1, 3) for c in range(2, 6)} | {(2, 2), (2, 5)}
    assert {tuple(s) for s in seeds.tolist()} == expected  # the interior pixel (2, 3) is not a seed


def test_contrast_hand_computed() -> None:
    features = torch.tensor([[[1.0, 0.0, 3.0]], [[0.0, 2.0, 4.0]]])  # cells [1,0], [0,2], [3,4]
    # Seed at cell 0 (image pixel (0, 0) of a 1×3 image): cosines 1, 0, 3/5 → variance of (1, 0, 0.6).
    value = contrast(features, np.array([[0, 0]]), (1, 3))
    assert value == pytest.approx(np.var([1.0, 0.0, 0.6]))


@pytest.mark.parametrize(("ring", "box"), [(3, [4, 4, 10, 10]), (5, [2, 2, 12, 12])])
def test_selected_threshold_puts_the_box_on_the_boundary_ring(ring: int, box: list[int]) -> None:
    scoremap, features = _square_scene(ring)
    tau = select_threshold(scoremap, features)
    assert box_seeds(scoremap, tau)[0].tolist() == box
    # The same answer for a map at twice the features' resolution (each seed maps to its feature cell).
    upsampled = np.kron(scoremap, np.ones((2, 2), np.float32))
    expected = [2 * box[0], 2 * box[1], 2 * box[2] + 1, 2 * box[3] + 1]
    assert box_seeds(upsampled, select_threshold(upsampled, features))[0].tolist() == expected


def test_oracle_comparison_on_the_known_scene() -> None:
    scoremap, features = _square_scene(3)
    result = oracle_comparison(
        torch.from_numpy(scoremap)[None], features[None], [torch.tensor([[4, 4, 10, 10]])]
    )
    assert result["two_stage_iou"].tolist() == [1.0] and result["oracle_iou"].tolist() == [1.0]
    assert 0.49 < result["two_stage_tau"][0] < 0.63 and 0.49 < result["oracle_tau"][0] < 0.63


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="fine_step"):
        TwoStageConfig(coarse_step=0.01, fine_step=0.05)
