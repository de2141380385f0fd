"""Pooling heads: hand-computed scores on tiny maps, invariants, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wsol.models import HEADS, build_head
from wsol.models.heads.prm import peak_mask
from wsol.models.heads.wildcat import regions_count


def identity_head(name: str, channels: int, **options: object):
    """A conv head whose 1×1 conv is the identity, so that class_maps == features (one modality)."""
    head = build_head(name, channels, channels, **options)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
        head.classifier.bias.zero_()
    return head


MAPS = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]], [[-1.0, 0.0], [0.0, -3.0]]]])  # (1, 2, 2, 2)


def test_gap_is_the_spatial_mean() -> None:
    output = identity_head("gap", 2)(MAPS)
    assert torch.equal(output.class_maps, MAPS)
    assert torch.allclose(output.logits, torch.tensor([[3.0, -1.0]]))


def test_max_is_the_spatial_max() -> None:
    output = identity_head("max", 2)(MAPS)
    assert torch.allclose(output.logits, torch.tensor([[6.0, 0.0]]))


def test_lse_matches_the_closed_form() -> None:
    output = identity_head("lse", 2, r=0.5)(MAPS)
    expected = [
        math.log(sum(math.exp(0.5 * v) for v in values) / 4) / 0.5
        for values in ([1, 2, 3, 6], [-1, 0, 0, -3])
    ]
    assert torch.allclose(output.logits, torch.tensor([expected]), atol=1e-6)


def test_lse_large_r_does_not_overflow_and_tends_to_max() -> None:
    maps = torch.tensor([[[[100.0, 99.0], [-50.0, 100.0]]]])
    logits = identity_head("lse", 1, r=1e4)(maps).logits
    assert torch.isfinite(logits).all()
    # two maxima among 4 regions: (1/r) log(2/4 · e^{100 r}) = 100 + log(1/2)/r
    assert logits.item() == pytest.approx(100 + math.log(0.5) / 1e4, abs=1e-4)


def test_lse_small_r_tends_to_mean() -> None:
    logits = identity_head("lse", 2, r=1e-4)(MAPS).logits
    assert torch.allclose(logits, torch.tensor([[3.0, -1.0]]), atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(values=arrays("float32", (1, 1, 3, 4), elements=st.floats(-50, 50, width=32)), r=st.floats(0.01, 100))
def test_lse_lies_between_mean_and_max(values, r: float) -> None:
    maps = torch.from_numpy(values)
    logit = identity_head("lse", 1, r=r)(maps).logits.item()
    assert maps.mean().item() - 1e-3 <= logit <= maps.max().item() + 1e-3


# ---------------------------------------------------------------------------------------------- WILDCAT
def wildcat(**options: object):
    options.setdefault("modalities", 1)
    return identity_head("wildcat", 1, **options)


FOUR = torch.tensor([[[[4.0, 1.0], [2.0, 3.0]]]])  # sorted: 4 3 2 1


def test_wildcat_top_and_bottom_with_alpha() -> None:
    # kmax 0.5 -> round(2) = 2 -> mean(4, 3) = 3.5; kmin 0.25 -> 1 -> 1; (3.5 + 0.6 * 1) / 2
    logits = wildcat(kmax=0.5, kmin=0.25, alpha=0.6).eval()(FOUR).logits
    assert logits.item() == pytest.approx((3.5 + 0.6 * 1.0) / 2)


def test_wildcat_kmin_term_is_applied_unlike_the_minmax_reference_bug() -> None:
    with_min = wildcat(kmax=0.5, kmin=0.5, alpha=1.0).eval()(FOUR).logits.item()
    assert with_min == pytest.approx((3.5 + 1.5) / 2)  # the buggy reference returns 3.5


def test_wildcat_alpha_zero_or_kmin_zero_is_top_mean_only() -> None:
    assert wildcat(kmax=0.5, kmin=0.5, alpha=0.0)(FOUR).logits.item() == pytest.approx(3.5)
    assert wildcat(kmax=0.5, kmin=0, alpha=0.7)(FOUR).logits.item() == pytest.approx(3.5)


def test_wildcat_kmin_none_means_kmax() -> None:
    # kmin = kmax = 1 region: (4 + 0.5 * 1) / 2
    assert wildcat(kmax=1, kmin=None, alpha=0.5)(FOUR).logits.item() == pytest.approx(2.25)


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (0.5, 5, 2),  # round(2.5) = 2 (half to even, as Python's round in the reference code)
        (0.7, 5, 4),  # round(3.5) = 4
        (0.3, 10, 3),
        (0.01, 16, 1),  # round(0.16) = 0 -> raised to 1
        (3, 16, 3),
        (40, 16, 16),  # a count above n is clipped
        (0, 16, 0),
    ],
)
def test_wildcat_region_counts(k: float, n: int, expected: int) -> None:
    assert regions_count(k, n, "kmax") == expected


def test_wildcat_fractional_rounding_in_the_head() -> None:
    row = torch.tensor([[[[5.0, 4.0, 3.0, 2.0, 1.0]]]])  # n = 5
    assert wildcat(kmax=0.5, kmin=0)(row).logits.item() == pytest.approx(4.5)  # 2 regions
    assert wildcat(kmax=0.7, kmin=0)(row).logits.item() == pytest.approx(3.5)  # 4 regions


def test_wildcat_modalities_are_averaged_per_class() -> None:
    head = build_head("wildcat", 1, 2, modalities=2, kmax=1, kmin=0, alpha=0.0)
    with torch.no_grad():  # channels: class 0 = (1x, 3x), class 1 = (-x, -5x)
        head.classifier.weight.copy_(torch.tensor([1.0, 3.0, -1.0, -5.0]).view(4, 1, 1, 1))
        head.classifier.bias.zero_()
    output = head(FOUR)
    assert torch.allclose(output.class_maps[0, 0], 2 * FOUR[0, 0])
    assert torch.allclose(output.class_maps[0, 1], -3 * FOUR[0, 0])
    assert torch.allclose(output.logits, torch.tensor([[8.0, -3.0]]))


def test_wildcat_dropout_is_off_in_eval_and_unbiased_in_training() -> None:
    head = wildcat(kmax=0.5, kmin=0.5, alpha=0.6, dropout=0.5)
    batch = FOUR.expand(4000, 1, 2, 2)
    expected = (3.5 + 0.6 * 1.5) / 2
    head.eval()
    assert torch.allclose(head(batch).logits, torch.full((4000, 1), expected))
    head.train()
    torch.manual_seed(1)
    first = head(batch).logits
    torch.manual_seed(1)
    assert torch.equal(first, head(batch).logits)  # same seed, same numbers
    assert first.std() > 0.5  # the sorted values are really dropped
    assert first.mean().item() == pytest.approx(expected, abs=0.05)  # scaled by 1/(1-p): unbiased


@pytest.mark.parametrize(
    "options",
    [{"kmax": 0}, {"kmax": 1.5}, {"kmin": -0.1}, {"dropout": 1.0}, {"modalities": 0}],
)
def test_wildcat_rejects_bad_options(options: dict) -> None:
    with pytest.raises(ValueError, match="WildcatHead"):
        build_head("wildcat", 4, 3, **options)


# ---------------------------------------------------------------------------------------------- MIL
def scalar_mil(gated: bool):
    """C = 1 feature, L = 1 hidden unit, all weights 1 and biases 0: a ∝ exp(tanh(x) [· sigm(x)])."""
    head = build_head("mil", 1, 1, mid_channels=1, gated=gated)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.fill_(1.0)
        for name, parameter in head.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
    return head


@pytest.mark.parametrize("gated", [False, True])
def test_mil_attention_and_logits_by_hand(gated: bool) -> None:
    x = torch.tensor([0.0, 1.0, -2.0, 3.0])
    hidden = torch.tanh(x) * (torch.sigmoid(x) if gated else 1.0)
    attention = torch.exp(hidden) / torch.exp(hidden).sum()
    output = scalar_mil(gated)(x.view(1, 1, 2, 2))
    assert torch.allclose(output.class_maps.flatten(), attention, atol=1e-6)
    assert output.logits.item() == pytest.approx((attention * x).sum().item(), abs=1e-6)


def test_mil_gated_differs_from_plain() -> None:
    x = torch.tensor([0.0, 1.0, -2.0, 3.0]).view(1, 1, 2, 2)
    assert not torch.allclose(scalar_mil(True)(x).class_maps, scalar_mil(False)(x).class_maps)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), gated=st.booleans())
def test_mil_attention_sums_to_one_per_class(seed: int, gated: bool) -> None:
    torch.manual_seed(seed)
    head = build_head("mil", 6, 3, mid_channels=4, gated=gated)
    output = head(torch.randn(2, 6, 3, 5) * 5)
    assert output.class_maps.shape == (2, 3, 3, 5)
    assert (output.class_maps >= 0).all()
    assert torch.allclose(output.class_maps.sum(dim=(2, 3)), torch.ones(2, 3), atol=1e-5)


def test_mil_logit_uses_one_linear_per_class() -> None:
    torch.manual_seed(0)
    head = build_head("mil", 5, 2)
    features = torch.randn(1, 5, 3, 3)
    output = head(features)
    bag = (output.class_maps[0, 1].flatten() * features[0].flatten(1)).sum(1)  # z_1 (C,)
    assert output.logits[0, 1].item() == pytest.approx((head.weight[1] @ bag + head.bias[1]).item(), abs=1e-5)


# ---------------------------------------------------------------------------------------------- WGAP
def test_wgap_cam_is_fc_weighted_features() -> None:
    torch.manual_seed(0)
    head = build_head("wgap", 4, 3)
    features = torch.randn(2, 4, 3, 5)
    output = head(features)
    for b in range(2):
        for k in range(3):
            expected = sum(head.fc.weight[k, c] * features[b, c] for c in range(4))
            assert torch.allclose(output.class_maps[b, k], expected, atol=1e-6)
    assert torch.allclose(output.logits, output.class_maps.mean(dim=(2, 3)) + head.fc.bias, atol=1e-6)


# ---------------------------------------------------------------------------------------------- PRM
ROW = [5.0, 3.0, 4.0, 1.0, 0.5, 2.0, 0.0, 9.0, 8.0]  # local maxima (3-window): 5, 4, 2, 9; median 3


def test_prm_peaks_by_hand() -> None:
    row = torch.tensor([[[ROW]]])
    assert peak_mask(row, median_filter=False)[0, 0, 0].nonzero().flatten().tolist() == [0, 2, 5, 7]
    assert peak_mask(row)[0, 0, 0].nonzero().flatten().tolist() == [0, 2, 7]  # 2.0 < median 3.0


def test_prm_peaks_in_two_dimensions_and_ties() -> None:
    maps = torch.tensor(
        [[[[9.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 5.0]]]]
    )
    peaks = peak_mask(maps, median_filter=False)[0, 0]
    # 9 and 5 are maxima; on the plateau of ones no location is the first maximum of its own window
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 0] = expected[3, 3] = True
    assert torch.equal(peaks, expected)


def test_prm_score_is_the_mean_peak_response() -> None:
    head = identity_head("prm", 1)
    assert head(torch.tensor([[[ROW]]])).logits.item() == pytest.approx((5 + 4 + 9) / 3)
    assert identity_head("prm", 1, median_filter=False)(
        torch.tensor([[[ROW]]])
    ).logits.item() == pytest.approx(5)


def test_prm_gradient_reaches_the_peaks_only() -> None:
    row = torch.tensor([[[ROW]]], requires_grad=True)
    identity_head("prm", 1)(row).logits.sum().backward()
    assert row.grad[0, 0, 0].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 0, 0, 0, 1 / 3, 0])


# ---------------------------------------------------------------------------------------------- all heads
@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_gives_differentiable_class_maps(name: str) -> None:
    torch.manual_seed(0)
    head = build_head(name, 8, 3)
    features = torch.randn(2, 8, 4, 4, requires_grad=True)
    output = head(features)
    assert output.logits.shape == (2, 3)
    assert output.class_maps.shape == (2, 3, 4, 4)
    output.class_maps[:, 1].square().sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["gap", "max", "wildcat"])
@settings(max_examples=10, deadline=None)
@given(values=arrays("float32", (2, 2, 3, 3), elements=st.floats(-10, 10, width=32)))
def test_pooled_scores_lie_within_the_map_range(name: str, values) -> None:
    maps = torch.from_numpy(values)
    options = {"alpha": 0.0, "modalities": 1} if name == "wildcat" else {}
    logits = identity_head(name, 2, **options).eval()(maps).logits
    assert (logits >= maps.flatten(2).amin(2) - 1e-5).all()
    assert (logits <= maps.flatten(2).amax(2) + 1e-5).all()


def test_build_head_errors_name_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="unknown head 'avg'.*'gap'"):
        build_head("avg", 4, 2)
    with pytest.raises(
        ValueError, match=r"head 'lse': unknown option\(s\) \['k'\]; accepted: \['modalities', 'r'\]"
    ):
        build_head("lse", 4, 2, k=3)
    with pytest.raises(ValueError, match="r must be a positive"):
        build_head("lse", 4, 2, r=0.0)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        build_head("gap", 4, 0)


def test_heads_reject_features_of_the_wrong_shape() -> None:
    head = build_head("gap", 4, 2)
    with pytest.raises(
        ValueError, match=r"GAPHead: expected features \(B, 4, h, w\), got shape \(1, 3, 2, 2\)"
    ):
        head(torch.zeros(1, 3, 2, 2))
