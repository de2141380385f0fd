"""The early-stopping score S (Shaharabany & Wolf, arXiv 2111.14131, Eq. 5-6) and its largest-contour box on
hand-built maps, with and without the full-frame guard.

``wsol.evaluation.box_from_map_weightmap`` implements the authors' rule: min-max to 8 bits, zero below
``int(max / 10)``, box of the largest contour, S = mass inside the box / total mass.
``wsol.evaluation.weightmap_s_score`` adds the guard: a box covering the whole map (or ``max_box_fraction``
of it) scores 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.evaluation import (
    EvaluatorConfig,
    WSOLEvaluator,
    box_from_map_weightmap,
    mean_weightmap_score,
    weightmap_s_score,
)


def _square(canvas: np.ndarray, x: int, y: int, size: int, value: float) -> None:
    canvas[y : y + size, x : x + size] = value


def test_single_blob_holds_all_the_mass() -> None:
    m = np.zeros((32, 32))
    _square(m, 5, 8, 10, 1.0)
    box, score = box_from_map_weightmap(m)
    assert score == pytest.approx(1.0)
    assert box[:2] == (5, 8)


def test_second_blob_outside_the_box_lowers_s() -> None:
    m = np.zeros((32, 32))
    _square(m, 2, 2, 6, 1.0)  # 36 pixels: the largest contour
    _square(m, 20, 20, 3, 1.0)  # 9 pixels outside its box
    box, score = box_from_map_weightmap(m)
    assert box[:2] == (2, 2)
    assert score == pytest.approx(36 / 45)


def test_s_weights_pixels_by_their_value() -> None:
    """The mass is intensity-weighted: a small bright blob outside counts more than its area."""
    m = np.zeros((32, 32))
    _square(m, 2, 2, 6, 0.5)  # grey round(127.5) = 128, 36 pixels: largest area
    _square(m, 20, 20, 2, 1.0)  # grey 255, 4 pixels
    box, score = box_from_map_weightmap(m)
    assert box[:2] == (2, 2)
    assert score == pytest.approx(36 * 128 / (36 * 128 + 4 * 255))


def test_values_below_a_tenth_of_the_max_are_dropped() -> None:
    """τ = max/10 (Eq. 5): a faint halo and faint far-away pixels neither extend the box nor count in S."""
    m = np.full((32, 32), 0.0)
    _square(m, 24, 24, 6, 0.05)  # grey 13 <= int(25.5) = 25: zeroed
    _square(m, 4, 4, 12, 0.05)
    _square(m, 6, 6, 8, 1.0)
    box, score = box_from_map_weightmap(m)
    assert box[:2] == (6, 6)
    assert score == pytest.approx(1.0)


def test_s_is_min_max_invariant() -> None:
    rng = np.random.default_rng(0)
    m = rng.random((24, 24)) ** 4
    box, score = box_from_map_weightmap(m)
    box2, score2 = box_from_map_weightmap(3.0 * m + 2.0)
    assert box == box2
    assert score == pytest.approx(score2)
    assert 0.0 < score <= 1.0


def test_constant_map_has_no_contour_and_zero_score() -> None:
    assert box_from_map_weightmap(np.zeros((8, 8))) == ((0, 0, 1, 1), 0.0)


def test_mean_score_over_a_batch() -> None:
    one_blob = np.zeros((16, 16))
    _square(one_blob, 2, 2, 4, 1.0)
    two_blobs = one_blob.copy()
    _square(two_blobs, 10, 10, 4, 1.0)  # equal areas: the first largest contour keeps half the mass
    maps = torch.from_numpy(np.stack([one_blob, two_blobs]))
    assert mean_weightmap_score(maps) == pytest.approx((1.0 + 0.5) / 2)


def _dome(size: int = 16, low: float = 0.45, high: float = 0.6) -> np.ndarray:
    """A near-uniform map, brightest at the centre: ``high - (high - low) * r² / r²_corner``.

    Min-max normalised it is ``1 - r² / r²_corner`` (r²_corner = 2 · 7.5² = 112.5 for 16 px): only the four
    corners fall to grey ≤ 25 (value 0; their neighbours have 1 - 98.5 / 112.5 = 0.12, grey 32), and the
    middle of every edge keeps 1 - 56.5 / 112.5 ≈ 0.5, so the kept region touches all four sides and its box
    is the whole map.
    """
    centre = (size - 1) / 2
    y, x = np.mgrid[:size, :size]
    r2 = (x - centre) ** 2 + (y - centre) ** 2
    return high - (high - low) * r2 / r2.max()


def test_near_uniform_map_scores_one_under_the_paper_and_zero_under_the_guard() -> None:
    """The saturation measured on BUSI: a whole-frame box makes Eq. 6's numerator equal its denominator."""
    m = _dome()
    box, score = box_from_map_weightmap(m)
    assert box == (0, 0, 16, 16)
    assert score == 1.0
    assert weightmap_s_score(m, max_box_fraction=None) == 1.0
    assert weightmap_s_score(m) == 0.0


def test_guard_leaves_a_localizing_map_untouched() -> None:
    m = np.zeros((32, 32))
    _square(m, 2, 2, 6, 1.0)  # 36 px: the largest contour, box 6 x 6 = 3.5 % of the map
    _square(m, 20, 20, 3, 1.0)  # 9 px outside it
    assert weightmap_s_score(m) == pytest.approx(36 / 45)
    assert weightmap_s_score(m, max_box_fraction=None) == pytest.approx(36 / 45)


def test_guard_threshold_is_a_fraction_of_the_map_area() -> None:
    """A 12 x 12 blob on 16 x 16: box fraction 144 / 256 = 0.5625, S = 1 (one blob)."""
    m = np.zeros((16, 16))
    _square(m, 2, 2, 12, 1.0)
    assert weightmap_s_score(m, max_box_fraction=0.57) == 1.0
    assert weightmap_s_score(m, max_box_fraction=0.5625) == 0.0  # >= the fraction: vacuous
    assert weightmap_s_score(m, max_box_fraction=0.5) == 0.0


def test_mean_score_with_and_without_the_guard() -> None:
    blob = np.zeros((16, 16))
    _square(blob, 2, 2, 4, 1.0)
    two = blob.copy()
    _square(two, 10, 10, 4, 1.0)  # equal areas: S = 1/2
    maps = torch.from_numpy(np.stack([_dome(), blob, two]))
    assert mean_weightmap_score(maps) == pytest.approx((0.0 + 1.0 + 0.5) / 3)
    assert mean_weightmap_score(maps, max_box_fraction=None) == pytest.approx((1.0 + 1.0 + 0.5) / 3)


def test_evaluator_applies_the_configured_guard() -> None:
    blob = np.zeros((16, 16))
    _square(blob, 2, 2, 4, 1.0)
    maps = torch.from_numpy(np.stack([_dome(), blob]))
    scores = {}
    for guard in (1.0, None):
        evaluator = WSOLEvaluator(EvaluatorConfig(weightmap_score=True, weightmap_max_box=guard))
        evaluator.update(maps)
        scores[guard] = evaluator.compute().s_score
    assert scores == {1.0: pytest.approx(0.5), None: pytest.approx(1.0)}


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_bad_guard_fraction_is_refused_with_its_name(fraction: float) -> None:
    with pytest.raises(ValueError, match="max_box_fraction"):
        weightmap_s_score(np.eye(8), max_box_fraction=fraction)
    with pytest.raises(ValueError, match="weightmap_max_box"):
        EvaluatorConfig(weightmap_max_box=fraction)
