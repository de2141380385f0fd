"""The one min-max normaliser: (m - min) / (max - min) per map; constant, NaN or ±inf maps become zeros."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.normalize import degenerate_maps, minmax_normalize

ORDINARY = [[1.0, 3.0], [5.0, 2.0]]
ORDINARY_NORMALIZED = [[0.0, 0.5], [1.0, 0.25]]  # (m - 1) / 4
DEGENERATE = {
    "constant": [[7.0, 7.0], [7.0, 7.0]],
    "nan": [[1.0, float("nan")], [5.0, 2.0]],
    "inf": [[1.0, float("inf")], [5.0, 2.0]],
    "-inf": [[-float("inf"), 3.0], [5.0, 2.0]],
    "all inf": [[float("inf")] * 2] * 2,
}


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_rule_on_ordinary_and_degenerate_maps(kind: str) -> None:
    maps = [ORDINARY, *DEGENERATE.values()]
    expected = np.array([ORDINARY_NORMALIZED] + [np.zeros((2, 2))] * len(DEGENERATE))
    array = np.array(maps, dtype=np.float32)
    given = torch.from_numpy(array) if kind == "torch" else array
    out = minmax_normalize(given)
    assert type(out) is type(given) and out.shape == given.shape and out.dtype == given.dtype
    np.testing.assert_array_equal(np.asarray(out), expected.astype(np.float32))
    flags = np.asarray(degenerate_maps(given))
    np.testing.assert_array_equal(flags, [False] + [True] * len(DEGENERATE))


def test_dims_choose_what_a_map_is() -> None:
    maps = np.array([[[0.0, 2.0]], [[4.0, 8.0]]])  # (2, 1, 2)
    np.testing.assert_array_equal(minmax_normalize(maps, dims=2), [[[0.0, 1.0]], [[0.0, 1.0]]])
    np.testing.assert_array_equal(minmax_normalize(maps, dims=3), [[[0.0, 0.25]], [[0.5, 1.0]]])  # / 8
    with pytest.raises(ValueError, match="dims"):
        minmax_normalize(maps, dims=4)


def test_tiny_span_still_reaches_one_and_integers_become_floats() -> None:
    tiny = torch.tensor([[[1.0, 1.0 + 2**-20]]], dtype=torch.float32)
    assert torch.equal(minmax_normalize(tiny), torch.tensor([[[0.0, 1.0]]]))
    out = minmax_normalize(np.array([[[0, 5, 10]]], dtype=np.uint8))
    assert out.dtype == np.float32 and out.tolist() == [[[0.0, 0.5, 1.0]]]


def test_gradients_are_finite_and_zero_on_degenerate_maps() -> None:
    maps = torch.tensor([ORDINARY, DEGENERATE["constant"], DEGENERATE["inf"]], requires_grad=True)
    minmax_normalize(maps).sum().backward()
    assert maps.grad is not None and torch.isfinite(maps.grad).all()
    assert torch.equal(maps.grad[1:], torch.zeros(2, 2, 2))
    # f = Σ_i (m_i - a) / S, a = min = 1, b = max = 5, S = 4: df/dm_i = 1/S = 0.25 at the values 3 and 2;
    # df/da = -n/S + Σ(m_i - a)/S² = -1 + 7/16, df/db = -7/16, added to the 0.25 of the min and max entries.
    expected = torch.tensor([[0.25 - 1 + 7 / 16, 0.25], [0.25 - 7 / 16, 0.25]])
    torch.testing.assert_close(maps.grad[0], expected)
