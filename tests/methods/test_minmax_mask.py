"""Mask computation of min-max entropy (seed 000 §3.3) on hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.methods.minmax_entropy import (
    aggregate_class_maps,
    minmax_normalize,
    pseudo_binary_mask,
    region_mask,
)

# Posterior (0.25, 0.75) over two class maps.
SCORES = torch.tensor([[0.0, math.log(3.0)]])
MAPS = torch.stack([torch.full((2, 2), 4.0), torch.tensor([[0.0, 4.0], [8.0, 0.0]])]).unsqueeze(0)


def test_aggregation_weights_maps_by_the_posterior() -> None:
    # 0.25 * 4 + 0.75 * A_1
    expected = torch.tensor([[[[1.0, 4.0], [7.0, 1.0]]]])
    assert torch.allclose(aggregate_class_maps(MAPS, SCORES), expected)


def test_minmax_normalization_per_sample_and_batch() -> None:
    maps = torch.tensor([[[[1.0, 4.0], [7.0, 1.0]]], [[[0.0, 0.0], [0.0, 2.0]]]])
    per_sample = minmax_normalize(maps, "per_sample")
    assert torch.allclose(per_sample[0, 0], torch.tensor([[0.0, 0.5], [1.0, 0.0]]))
    assert torch.allclose(per_sample[1, 0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    batch = minmax_normalize(maps, "batch")  # the reference's min/max over the whole batch: 0 and 7
    assert torch.allclose(batch, maps / 7.0)
    assert torch.equal(minmax_normalize(torch.full((1, 1, 2, 2), 3.0)), torch.zeros(1, 1, 2, 2))


def test_pseudo_binary_sigmoid() -> None:
    x = torch.tensor([0.0, 0.5, 1.0, 0.75])
    expected = [1 / (1 + math.exp(4)), 0.5, 1 / (1 + math.exp(-4)), 1 / (1 + math.exp(-2))]
    assert pseudo_binary_mask(x, omega=8.0, sigma=0.5).tolist() == pytest.approx(expected, abs=1e-6)
    # TMI constants: omega 5, sigma 0.15
    assert pseudo_binary_mask(torch.tensor([0.15]), 5.0, 0.15).item() == pytest.approx(0.5)


def test_region_mask_end_to_end() -> None:
    # Bilinear upscaling 2x2 -> 3x3 with align_corners=True keeps the corners and averages in between.
    upscaled = torch.tensor([[1.0, 2.5, 4.0], [4.0, 3.25, 2.5], [7.0, 4.0, 1.0]])
    expected = torch.sigmoid(8.0 * ((upscaled - 1.0) / 6.0 - 0.5))
    mask = region_mask(MAPS, SCORES, (3, 3), omega=8.0, sigma=0.5)
    assert mask.shape == (1, 1, 3, 3)
    assert torch.allclose(mask[0, 0], expected, atol=1e-6)


def test_detach_option_cuts_the_graph() -> None:
    maps = MAPS.clone().requires_grad_(True)
    scores = SCORES.clone().requires_grad_(True)
    assert not region_mask(maps, scores, (4, 4), detach=True).requires_grad
    attached = region_mask(maps, scores, (4, 4), detach=False)
    attached.sum().backward()
    assert maps.grad is not None and scores.grad is not None and maps.grad.abs().sum() > 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 100.0))
def test_per_sample_mask_does_not_depend_on_the_rest_of_the_batch(seed: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    maps = torch.rand(2, 3, 4, 4, generator=generator)
    scores = torch.randn(2, 3, generator=generator)
    other = maps.clone()
    other[1] = other[1] * scale + 5.0
    alone = region_mask(maps[:1], scores[:1], (8, 8))
    assert torch.allclose(region_mask(maps, scores, (8, 8))[:1], alone, atol=1e-6)
    assert torch.allclose(region_mask(other, scores, (8, 8))[:1], alone, atol=1e-6)
    assert alone.min() >= 0 and alone.max() <= 1


def test_batch_normalization_option_couples_samples() -> None:
    maps = torch.rand(2, 2, 4, 4)
    scores = torch.zeros(2, 2)
    shifted = maps.clone()
    shifted[1] += 10.0
    first = region_mask(maps, scores, (4, 4), normalization="batch")[0]
    assert not torch.allclose(region_mask(shifted, scores, (4, 4), normalization="batch")[0], first)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="class_maps"):
        aggregate_class_maps(MAPS, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="normalization"):
        minmax_normalize(MAPS, "global")  # type: ignore[arg-type]
