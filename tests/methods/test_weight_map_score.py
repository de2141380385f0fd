"""The early-stopping score S (seed ``002`` Eq. 5-6) and its largest-contour box on hand-built maps.

``wsol.evaluation.box_from_map_weightmap`` implements the rule of research note ``methods.md`` A.4: min-max to
8 bits, zero below ``int(max / 10)``, box of the largest contour, S = mass inside the box / total mass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.evaluation import box_from_map_weightmap, mean_weightmap_score


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
