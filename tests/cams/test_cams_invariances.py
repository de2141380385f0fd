"""Invariances every method must honour: batch order, chunk size, seeds, and scaling of the target logit."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsol.cams import CAM_METHODS, build_extractor

FAST_OPTIONS = {"sscam": {"num_samples": 3, "std": 0.5}, "iscam": {"num_samples": 3}}
SETTINGS = settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("method", sorted(CAM_METHODS))
@SETTINGS
@given(order=st.permutations(range(4)))
def test_batch_order_permutes_the_maps(method: str, order: list[int], small_net) -> None:
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    targets = torch.tensor([0, 3, 1, 2])
    with build_extractor(method, small_net, "body", **FAST_OPTIONS.get(method, {})) as extractor:
        maps = extractor(x, targets)
        permuted = extractor(x[order], targets[order])
    torch.testing.assert_close(permuted, maps[order])


# Normalised maps are invariant to S_c → λ S_c (λ > 0) for methods linear in the gradient or in W_fc (and for
# Ablation-CAM's ratio). Not listed: Grad-CAM++ (α = g² / (2g² + λ Σ A g³) depends on λ), Smooth Grad-CAM++,
# and the Score-CAM family (softmax probabilities change with the logit scale).
SCALE_INVARIANT = ["cam", "recombined_cam", "gradcam", "xgradcam", "layercam", "ablationcam"]


@pytest.mark.parametrize("method", SCALE_INVARIANT)
@SETTINGS
@given(scale=st.floats(0.1, 10.0))
def test_scaling_the_target_logit_keeps_normalised_maps(method: str, scale: float, small_net) -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    scaled = copy.deepcopy(small_net)
    with torch.no_grad():
        scaled.fc.weight.mul_(scale)
        scaled.fc.bias.mul_(scale)
    with build_extractor(method, small_net, "body") as a, build_extractor(method, scaled, "body") as b:
        torch.testing.assert_close(a(x, [1, 2]), b(x, [1, 2]))
        if method in ("gradcam", "xgradcam", "layercam"):
            raw = {"relu": False, "normalize": None}
            torch.testing.assert_close(b(x, [1, 2], **raw), scale * a(x, [1, 2], **raw))


@pytest.mark.parametrize("method", ["scorecam", "sscam", "iscam", "ablationcam"])
def test_chunk_size_does_not_change_the_maps(method: str, small_net) -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    options = FAST_OPTIONS.get(method, {})
    with build_extractor(method, small_net, "body", batch_size=1, **options) as one:
        with build_extractor(method, small_net, "body", batch_size=1000, **options) as many:
            torch.testing.assert_close(one(x, 0, normalize=None), many(x, 0, normalize=None))


@pytest.mark.parametrize("method", ["sscam", "smoothgradcampp"])
def test_same_seed_same_numbers(method: str, small_net) -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    options = {"num_samples": 3, "std": 0.5}
    with build_extractor(method, small_net, "body", seed=1, **options) as a:
        first = a(x, 0, normalize=None)
        torch.randn(10)  # the global RNG does not matter
        assert torch.equal(a(x, 0, normalize=None), first)
    with build_extractor(method, small_net, "body", seed=2, **options) as b:
        assert not torch.allclose(b(x, 0, normalize=None), first)
