"""Min-max entropy / max-min uncertainty loss helpers vs hand-computed values (seed 000 §3.2, TMI ASC)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.methods.losses import (
    cross_entropy,
    cross_entropy_to_uniform,
    entropy,
    extended_log_barrier,
    negative_entropy,
    size_barrier,
)

# p = (0.25, 0.75) and p = (0.5, 0.5)
LOGITS = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])


def test_cross_entropy_to_uniform_hand_computed() -> None:
    # -(ln 0.25 + ln 0.75)/2 and -(ln 0.5 + ln 0.5)/2
    first = -(math.log(0.25) + math.log(0.75)) / 2
    expected = torch.tensor([first, math.log(2.0)])
    assert torch.allclose(cross_entropy_to_uniform(LOGITS, reduction="none"), expected, atol=1e-6)
    assert cross_entropy_to_uniform(LOGITS).item() == pytest.approx(expected.mean().item(), abs=1e-6)
    # Bits, as the TMI code: (2 + log2(4/3)) / 2 and exactly 1 bit for the uniform sample.
    bits = cross_entropy_to_uniform(LOGITS, log_base=2.0, reduction="none")
    assert bits.tolist() == pytest.approx([(2 + math.log2(4 / 3)) / 2, 1.0], abs=1e-6)


def test_entropy_and_negative_entropy_hand_computed() -> None:
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert entropy(LOGITS, reduction="none").tolist() == pytest.approx([h, math.log(2)], abs=1e-6)
    assert entropy(LOGITS, log_base=2.0, reduction="sum").item() == pytest.approx(
        h / math.log(2) + 1, abs=1e-6
    )
    assert negative_entropy(LOGITS).item() == pytest.approx(-(h + math.log(2)) / 2, abs=1e-6)


def test_cross_entropy_matches_negative_log_likelihood() -> None:
    labels = torch.tensor([1, 0])
    assert cross_entropy(LOGITS, labels, reduction="none").tolist() == pytest.approx(
        [-math.log(0.75), math.log(2)], abs=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=2, max_size=7),
)
def test_uniform_cross_entropy_bounds_entropy(values: list[float]) -> None:
    # H(q, p) = log K + KL(q || p) >= log K >= H(p): the surrogate's minimum is at the entropy maximum (Eq.
    # 6).
    logits = torch.tensor([values], dtype=torch.float64)
    k = len(values)
    ce = cross_entropy_to_uniform(logits).item()
    assert ce >= math.log(k) - 1e-9
    assert math.log(k) >= entropy(logits).item() - 1e-9


def test_uniform_cross_entropy_minimum_gradient_is_zero_at_uniform() -> None:
    logits = torch.full((1, 4), 0.3, requires_grad=True)
    cross_entropy_to_uniform(logits).backward()
    assert logits.grad is not None and torch.allclose(logits.grad, torch.zeros(1, 4), atol=1e-7)


def test_extended_log_barrier_pieces() -> None:
    t = 5.0
    z = torch.tensor([-1.0, -math.e, 0.0, 1.0], requires_grad=True)
    value = extended_log_barrier(z, t)
    linear_at_zero = -math.log(1 / t**2) / t + 1 / t  # 0.2 * ln 25 + 0.2
    assert value.tolist() == pytest.approx([0.0, -0.2, linear_at_zero, t + linear_at_zero], abs=1e-6)
    value.sum().backward()
    # Barrier slope -1/(t z) inside, t on the linear extension.
    assert z.grad is not None
    assert z.grad.tolist() == pytest.approx([0.2, 0.2 / math.e, t, t], abs=1e-6)


@pytest.mark.parametrize("t", [0.5, 1.0, 5.0, 10.0])
def test_extended_log_barrier_is_c1_at_the_switch(t: float) -> None:
    switch = -1.0 / t**2
    eps = 1e-6
    z = torch.tensor([switch - eps, switch + eps], dtype=torch.float64, requires_grad=True)
    value = extended_log_barrier(z, t)
    assert value[0].item() == pytest.approx(value[1].item(), abs=1e-4)
    value.sum().backward()
    assert z.grad is not None
    assert z.grad[0].item() == pytest.approx(t, rel=1e-4) and z.grad[1].item() == pytest.approx(t, rel=1e-9)


def test_size_barrier_hand_computed() -> None:
    t = 5.0
    half = torch.full((1, 2, 2), 0.5)  # s+ = s- = 2
    assert size_barrier(half, t).item() == pytest.approx(-2 * math.log(2) / t, abs=1e-6)
    full = torch.ones(1, 1, 2, 2)  # s+ = 4, s- = 0: the background constraint is violated -> linear piece
    expected_full = -math.log(4) / t + (-math.log(1 / t**2) / t + 1 / t)
    assert size_barrier(full, t).item() == pytest.approx(expected_full, abs=1e-6)
    both = torch.cat([half.unsqueeze(1), full])  # batch mean
    assert size_barrier(both, t).item() == pytest.approx((-2 * math.log(2) / t + expected_full) / 2, abs=1e-6)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="log_base"):
        entropy(LOGITS, log_base=1.0)
    with pytest.raises(ValueError, match=r"logits must have shape \(B, K\)"):
        entropy(torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        entropy(LOGITS, reduction="avg")
    with pytest.raises(ValueError, match="t must be > 0"):
        extended_log_barrier(torch.zeros(1), 0.0)
    with pytest.raises(ValueError, match="mask must have shape"):
        size_barrier(torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="labels must have shape"):
        cross_entropy(LOGITS, torch.tensor([0]))
