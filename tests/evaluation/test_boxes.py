"""Boxes from maps: hand-computed cases, quirks of the reference, and parity with the naive per-τ loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _wsolevaluation_naive import naive_boxes, naive_correct
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.evaluation import box_correctness, boxes_from_map, iou_matrix
from wsol.evaluation.boxes import level_ious
from wsol.evaluation.parity import quantize

DELTAS = [30, 50, 70]
ENGINES = ("trace",) if level_ious is None else ("sweep", "trace")  # the sweep engine needs numba


def test_iou_matrix_hand_computed() -> None:
    a = np.array([[0, 0, 9, 9], [0, 0, 0, 0]])
    b = np.array([[0, 0, 9, 9], [5, 5, 14, 14], [20, 20, 30, 30]])
    ious = iou_matrix(a, b)
    assert ious.shape == (2, 3)
    assert ious[0, 0] == 1.0
    assert ious[0, 1] == 25 / 175  # 5x5 overlap of two 10x10 boxes (+1 convention)
    assert ious[0, 2] == 0.0
    assert ious[1, 0] == 1 / 100  # the [0,0,0,0] box is one pixel
    # A union that is not positive (inverted boxes) scores 0 instead of dividing by zero.
    assert iou_matrix(np.array([[5, 5, 0, 0]]), np.array([[5, 5, 0, 0]]))[0, 0] == 0.0


def test_box_of_a_rectangle_in_both_conventions() -> None:
    m = np.zeros((10, 10))
    m[2:5, 3:7] = 1.0  # rows 2..4, columns 3..6
    assert boxes_from_map(m, 0.5, multi_contour=False).tolist() == [[3, 2, 7, 5]]  # end = x + w (one too far)
    assert boxes_from_map(m, 0.5, multi_contour=False, convention="inclusive").tolist() == [[3, 2, 6, 4]]


def test_box_end_is_clamped_at_the_border() -> None:
    m = np.zeros((10, 12))
    m[6:, 8:] = 1.0  # touches the bottom-right corner
    assert boxes_from_map(m, 0.0, multi_contour=False).tolist() == [[8, 6, 11, 9]]  # min(x + w, W - 1)
    assert boxes_from_map(m, 0.0, multi_contour=False, convention="inclusive").tolist() == [[8, 6, 11, 9]]


def test_largest_contour_is_by_polygon_area_not_pixel_count() -> None:
    """Quirk: a 1-pixel-wide line has contour area 0, so a 2x2 square (area 1) wins over a 9-pixel line."""
    m = np.zeros((12, 12))
    m[1, 1:10] = 1.0  # 9 pixels, cv2.contourArea == 0
    m[6:8, 6:8] = 1.0  # 4 pixels, cv2.contourArea == 1
    assert boxes_from_map(m, 0.5, multi_contour=False, convention="inclusive").tolist() == [[6, 6, 7, 7]]
    every = boxes_from_map(m, 0.5, multi_contour=True, convention="inclusive").tolist()
    assert sorted(every) == [[1, 1, 9, 1], [6, 6, 7, 7]]


def test_hole_contours_count_as_boxes_in_v2() -> None:
    """RETR_TREE returns the hole of a ring as a second contour; V2 keeps its box too."""
    m = np.zeros((12, 12))
    m[2:9, 2:9] = 1.0
    m[4:7, 4:7] = 0.0
    every = sorted(boxes_from_map(m, 0.5, multi_contour=True, convention="inclusive").tolist())
    assert every == [[2, 2, 8, 8], [3, 3, 7, 7]]  # the hole border runs through the ring's inner pixels


def test_threshold_is_strict_and_relative_to_the_quantised_max() -> None:
    m = np.zeros((8, 8))
    m[1:3, 1:3] = 0.5  # quantised to 127
    m[5, 5] = 1.0  # 255
    # int(0.498 * 255) = 126 < 127: both blobs are kept; int(0.5 * 255) = 127 is not exceeded by 127.
    assert len(boxes_from_map(m, 0.498, multi_contour=True)) == 2
    assert boxes_from_map(m, 0.5, multi_contour=True, convention="inclusive").tolist() == [[5, 5, 5, 5]]


def test_quantisation_truncates() -> None:
    assert quantize(np.array([0.999, 1.0, 0.5, 0.00392])).tolist() == [254, 255, 127, 0]


def test_all_zero_map_gives_the_reference_null_box() -> None:
    m = np.zeros((6, 6))
    assert boxes_from_map(m, 0.3, multi_contour=False).tolist() == [[0, 0, 0, 0]]
    assert boxes_from_map(m, 0.3, multi_contour=False, convention="inclusive").shape == (0, 4)
    largest, every = box_correctness(
        quantize(m), np.arange(0, 1, 0.1), np.array([[0, 0, 0, 0]]), np.array([0.5])
    )
    assert largest.all() and every.all()  # the null box is the pixel (0, 0): IoU 1 with a GT box there
    largest, _ = box_correctness(
        quantize(m), np.arange(0, 1, 0.1), np.array([[0, 0, 0, 0]]), np.array([0.5]), "inclusive"
    )
    assert not largest.any()


def test_empty_ground_truth_is_rejected() -> None:
    with pytest.raises(ValueError, match="gt_boxes"):
        box_correctness(np.zeros((4, 4), np.uint8), np.arange(0, 1, 0.5), np.zeros((0, 4)), np.array([0.5]))


def _smooth(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.random((int(rng.integers(2, 7)), int(rng.integers(2, 7)))).astype(np.float32)
    m = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return (m - m.min()) / max(float(m.max() - m.min()), 1e-6)


def _fragmented(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.random((size // 4, size // 4)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_NEAREST)


def _blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    """A few one-pixel blobs, lines and squares on zero, some touching the border."""
    m = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 6))):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(1, 4, 2)
        m[y : y + h, x : x + w] = rng.choice([0.2, 0.5, 1.0])
    return m


def _random_map(rng: np.random.Generator, kind: int) -> np.ndarray:
    size = int(rng.integers(8, 40))
    makers = (_smooth, _fragmented, _blobs)
    if kind < 3:
        return makers[kind](rng, size)
    if kind == 3:
        return rng.random((size, size)).astype(np.float32)  # noise
    if kind == 4:
        return np.full((size, size), rng.choice([0.0, 1.0, 0.5]), np.float32)  # constant / all zero
    return rng.random((size, size)).astype(np.float64) ** 4  # float64, mostly low values


def _random_gt(rng: np.random.Generator, size: tuple[int, int]) -> list[list[int]]:
    height, width = size
    boxes = []
    for _ in range(int(rng.integers(1, 4))):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        boxes.append([x0, y0, x1, y1])
    if rng.random() < 0.2:
        boxes.append([0, 0, width - 1, height - 1])  # whole image, at the border
    return boxes


def test_parity_with_the_naive_loop_on_1200_random_and_adversarial_maps() -> None:
    """Done-when criterion: both engines equal the naive per-τ loop on >= 1,000 maps (bit-identical)."""
    rng = np.random.default_rng(2024)
    taus = np.arange(0, 1, 0.05)
    for index in range(1200):
        scoremap = _random_map(rng, index % 6)
        gt = _random_gt(rng, scoremap.shape)
        naive_largest, naive_every = naive_correct(scoremap, taus, gt, DELTAS)
        for engine in ENGINES:
            largest, every = box_correctness(
                quantize(scoremap), taus, np.array(gt), np.array(DELTAS) / 100, engine=engine
            )
            np.testing.assert_array_equal(largest, naive_largest, err_msg=f"{engine} map {index}")
            np.testing.assert_array_equal(every, naive_every, err_msg=f"{engine} map {index}")


@pytest.mark.skipif(level_ious is None, reason="the sweep engine needs numba")
def test_engines_agree_on_224px_maps_at_fine_tau() -> None:
    """Full-size smooth and fragmented maps at τ step 0.001, several GT boxes, both conventions."""
    rng = np.random.default_rng(5)
    taus = np.arange(0, 1, 0.001)
    for index in range(6):
        scoremap = (_smooth if index % 2 else _fragmented)(rng, 224)
        gt = np.array(_random_gt(rng, scoremap.shape))
        for convention in ("wsolevaluation", "inclusive"):
            sweep = box_correctness(quantize(scoremap), taus, gt, np.array(DELTAS) / 100, convention, "sweep")
            trace = box_correctness(quantize(scoremap), taus, gt, np.array(DELTAS) / 100, convention, "trace")
            np.testing.assert_array_equal(sweep[0], trace[0])
            np.testing.assert_array_equal(sweep[1], trace[1])


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="engine"):
        box_correctness(
            np.ones((4, 4), np.uint8), np.array([0.5]), np.array([[0, 0, 1, 1]]), np.array([0.5]), engine="x"
        )


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(st.integers(0, 255), min_size=36, max_size=36),
    tau=st.floats(0, 0.999),
    multi=st.booleans(),
)
def test_boxes_from_map_matches_naive(cells: list[int], tau: float, multi: bool) -> None:
    m = cv2.resize(np.array(cells, np.float32).reshape(6, 6) / 255, (18, 18), interpolation=cv2.INTER_NEAREST)
    assert boxes_from_map(m, tau, multi_contour=multi).tolist() == naive_boxes(m, tau, multi)


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (2, 2), (1, 1), (3, 40)])
def test_degenerate_shapes_match_naive(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(11)
    taus = np.arange(0, 1, 0.1)
    for _ in range(20):
        scoremap = (rng.random(shape) * (rng.random(shape) > 0.4)).astype(np.float32)
        gt = [[0, 0, shape[1] - 1, shape[0] - 1], [0, 0, 0, 0]]
        naive_largest, naive_every = naive_correct(scoremap, taus, gt, DELTAS)
        for engine in ENGINES:
            largest, every = box_correctness(
                quantize(scoremap), taus, np.array(gt), np.array(DELTAS) / 100, engine=engine
            )
            np.testing.assert_array_equal(largest, naive_largest)
            np.testing.assert_array_equal(every, naive_every)


@pytest.mark.skipif(level_ious is None, reason="the sweep engine needs numba")
def test_exit_levels_fill_holes_and_nested_flags_mean_a_component_inside_a_hole() -> None:
    """The flood's exit levels are the grey-level hole filling ({t_exit > t} = the filled binarisation at
    every t), and the hole sweep flags exactly the levels with more 8-connected components than filled ones
    (a component nested in a hole), which decide whether the foreground sweep may be skipped."""
    from scipy import ndimage

    from wsol.evaluation import level_sets

    rng = np.random.default_rng(8)
    ring = np.zeros((7, 7), np.uint8)
    ring[1:-1, 1:-1] = 200
    ring[2:-2, 2:-2] = 0
    ring[3, 3] = 150  # nested in the ring's hole for t < 150
    maps = [ring, ring[:, ::-1] // 2 + 100]
    for _ in range(40):
        height, width = rng.integers(1, 16, 2)
        maps.append(
            (rng.integers(0, 256, (height, width)) * (rng.random((height, width)) > 0.3)).astype(np.uint8)
        )
    seen = set()
    for q in maps:
        height, width = q.shape
        work = level_sets._WORKSPACE.get(height, width)
        work.levels.reshape(height + 2, width + 2)[1:-1, 1:-1] = q
        target = (width, height, np.zeros((1, 4), np.int64), True)
        _, _, n_holes = level_sets._flood(q, target, work)
        exit_level = work.exit_level.reshape(height + 2, width + 2)[1:-1, 1:-1].copy()
        nested = level_sets._hole_sweep(work.hole_order, level_sets._sort_holes(work, n_holes), target, work)[
            1
        ]
        for t in range(256):
            filled = ndimage.binary_fill_holes(q > t)
            np.testing.assert_array_equal(exit_level > t, filled)
            components = ndimage.label(q > t, np.ones((3, 3)))[1]
            tops = ndimage.label(filled, np.ones((3, 3)))[1]
            assert (nested[t] >= 0) == (components > tops), t
            seen.add(components > tops)
    assert seen == {False, True}
