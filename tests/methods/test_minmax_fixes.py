"""Options beyond the paper: deterministic differentiable upscaling, the gradient path to the localizer,
BatchNorm handling of masked forwards, exclusion of untrusted samples, BatchNorm recalibration."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from wsol.methods import build_method
from wsol.methods.minmax_entropy import MinMaxEntropy, bilinear_matrix, masked_batchnorm, upscale_bilinear
from wsol.training.recalibrate import recalibrate_batchnorm

NUM_CLASSES = 3


def _method(**options: Any) -> MinMaxEntropy:
    torch.manual_seed(0)
    wildcat = {"kmax": 0.3, "modalities": 2, **options.pop("wildcat", {})}
    defaults: dict[str, Any] = {"backbone": {"name": "tiny"}, "wildcat": wildcat, "classifier_scale": 1.0}
    method = build_method("minmax_entropy", NUM_CLASSES, {**defaults, **options})
    assert isinstance(method, MinMaxEntropy)
    return method


def _batch(size: int = 4, side: int = 32) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(size, 3, side, side, generator=generator),
        "label": torch.arange(size) % NUM_CLASSES,
    }


def _bn_buffers(module: nn.Module) -> list[Tensor]:
    return [b.clone() for name, b in module.named_buffers() if "running" in name]


def test_interpolation_matrix_by_hand() -> None:
    # 2 -> 3, align_corners=True: samples at 0, 0.5, 1.
    assert torch.equal(bilinear_matrix(3, 2), torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    # 3 -> 5: samples at 0, 0.5, 1, 1.5, 2.
    expected = torch.tensor(
        [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]
    )
    assert torch.allclose(bilinear_matrix(5, 3), expected)
    assert torch.equal(bilinear_matrix(4, 1), torch.ones(4, 1))
    with pytest.raises(ValueError, match="sizes"):
        bilinear_matrix(0, 3)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 40), st.integers(1, 40), st.integers(0, 999))
def test_matrix_upscaling_equals_bilinear_interpolation_and_its_gradient(
    h: int, w: int, out_h: int, out_w: int, seed: int
) -> None:
    maps = torch.randn(2, 1, h, w, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    weights = torch.randn(2, 1, out_h, out_w, generator=torch.Generator().manual_seed(seed + 1))
    ours = upscale_bilinear(maps, (out_h, out_w))
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), maps)
    reference = F.interpolate(maps, size=(out_h, out_w), mode="bilinear", align_corners=True)
    (grad_reference,) = torch.autograd.grad((reference * weights).sum(), maps)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert torch.allclose(grad_ours, grad_reference, atol=1e-4)


def _localizer_head_grad(method: MinMaxEntropy, batch: dict[str, Tensor]) -> float:
    """|gradient| at the localizer head's class-map layer from C's losses alone (loc_weight = 0)."""
    method.zero_grad()
    method.training_step(batch, lambda loss: loss.backward())
    grad = method.localizer_head.classifier.weight.grad
    return 0.0 if grad is None else float(grad.abs().sum())


@pytest.mark.parametrize(
    ("options", "reaches"),
    [
        ({"mask": {"detach": True}}, False),  # paper footnote 5: only through the shared backbone
        ({"mask": {"detach": False}}, True),  # C's error reaches M through M⁺ (§3.2)
        ({"mask": {"detach": True}, "erasing": {"depth": 2, "start_epoch": 0}}, False),
        ({"mask": {"detach": False}, "erasing": {"depth": 2, "start_epoch": 0}}, True),  # via Ψ(0)·M⁺ in R*
    ],
)
def test_gradient_path_from_the_classifier_to_the_localizer_head(
    options: dict[str, Any], reaches: bool
) -> None:
    method = _method(loc_weight=0.0, **options)
    assert (_localizer_head_grad(method, _batch()) > 0) is reaches
    # The shared backbone receives C's gradient in every case.
    first = next(method.backbone.parameters()).grad
    assert first is not None and first.abs().sum() > 0


def test_masked_batchnorm_modes() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    images = torch.randn(4, 3, 8, 8) * 3 + 1
    before = _bn_buffers(net)
    batch_stats = copy.deepcopy(net)(images)
    running_stats = copy.deepcopy(net).eval()(images)
    with masked_batchnorm(net, "frozen"):
        frozen = net(images)
    assert all(torch.equal(a, b) for a, b in zip(_bn_buffers(net), before, strict=True))
    assert torch.allclose(frozen, batch_stats, atol=1e-6)  # normalised with the batch's own statistics
    with masked_batchnorm(net, "eval"):
        evaluated = net(images)
    assert all(torch.equal(a, b) for a, b in zip(_bn_buffers(net), before, strict=True))
    assert torch.allclose(evaluated, running_stats, atol=1e-6)
    assert net[1].training and net[1].momentum == 0.1  # restored
    with masked_batchnorm(net, "update"):
        net(images)
    assert not torch.equal(_bn_buffers(net)[0], before[0])


@pytest.mark.parametrize("mode", ["frozen", "eval"])
def test_clean_only_running_statistics_in_training(mode: str) -> None:
    batch = _batch()
    for erasing in (0, 2):
        method = _method(masked_bn=mode, erasing={"depth": erasing, "start_epoch": 0})
        clean_only = copy.deepcopy(method)
        method.training_step(batch, lambda loss: loss.backward())
        with torch.no_grad():
            clean_only.localize(batch["image"])  # the one clean forward of the step
        for ours, expected in zip(_bn_buffers(method), _bn_buffers(clean_only), strict=True):
            assert torch.allclose(ours, expected, atol=1e-6)
    paper = _method(erasing={"depth": 0})
    clean_only = copy.deepcopy(paper)
    paper.training_step(batch, lambda loss: loss.backward())
    with torch.no_grad():
        clean_only.localize(batch["image"])
    assert not torch.allclose(_bn_buffers(paper)[0], _bn_buffers(clean_only)[0])  # the paper's mixes X±


def _misclassified_labels(method: MinMaxEntropy, images: Tensor, wrong: Tensor) -> Tensor:
    """Labels that the localizer gets right exactly where ``wrong`` is False."""
    with torch.no_grad():
        clone = copy.deepcopy(method)
        predicted = clone.localizer_head(clone.backbone(images)).logits.argmax(1)
    return torch.where(wrong, (predicted + 1) % NUM_CLASSES, predicted)


def test_untrusted_share_and_exclusion() -> None:
    images = _batch()["image"]
    wrong = torch.tensor([True, False, True, True])
    for exclude in (False, True):
        method = _method(
            erasing={"depth": 2, "start_epoch": 0, "exclude_untrusted": exclude}, wildcat={"dropout": 0.0}
        )
        batch = {"image": images, "label": _misclassified_labels(method, images, wrong)}
        terms = method.training_step(batch, lambda loss: loss.backward())
        assert terms["untrusted_share"].item() == pytest.approx(0.75)
    everyone_wrong = torch.ones(4, dtype=torch.bool)
    for exclude, expect_grad in [(False, True), (True, False)]:
        method = _method(erasing={"depth": 2, "start_epoch": 0, "exclude_untrusted": exclude})
        batch = {"image": images, "label": _misclassified_labels(method, images, everyone_wrong)}
        terms = method.training_step(batch, lambda loss: loss.backward())
        assert terms["untrusted_share"].item() == 1.0
        grad = method.classifier_head.classifier.weight.grad
        assert (grad is not None and bool(grad.abs().sum() > 0)) is expect_grad
        if exclude:
            assert terms["loss_pos"].item() == 0.0 and terms["loss_neg"].item() == 0.0


def test_batchnorm_recalibration_is_the_average_over_clean_batches() -> None:
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Dropout(0.5), nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2))
    net.eval()
    net[0].running_mean.fill_(100.0)
    batches = [torch.randn(4, 3, 5, 5) + shift for shift in (0.0, 2.0, 4.0)]
    seen = recalibrate_batchnorm(net, net, batches)
    assert seen == 12
    everything = torch.cat(batches)
    assert torch.allclose(net[0].running_mean, everything.mean(dim=(0, 2, 3)), atol=1e-5)
    # The cumulative average of the per-batch unbiased variances.
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(net[0].running_var, variances, atol=1e-5)
    assert not net.training and not net[1].training and net[0].momentum == 0.1
    with pytest.raises(ValueError, match="no images"):
        recalibrate_batchnorm(net, net, [])
    with pytest.raises(ValueError, match="no BatchNorm"):
        recalibrate_batchnorm(nn.Linear(2, 2), lambda x: x, [torch.zeros(1, 2)])


def test_differentiable_erasing_keeps_the_values_and_backpropagates_step_zero_with_the_classifier() -> None:
    batch = _batch()
    for detach in (True, False):
        method = _method(mask={"detach": detach}, erasing={"depth": 3, "start_epoch": 0})
        calls: list[float] = []

        def backward(loss: Tensor, calls: list[float] = calls) -> None:
            calls.append(float(loss.detach()))
            loss.backward()

        terms = method.training_step(batch, backward)
        steps = int(terms["erasing_steps"])
        # Detached: one backward per localizer step, then C's. Differentiable: step 0 joins C's backward.
        assert len(calls) == (steps + 1 if detach else steps)
        if detach:
            reference = terms
        else:  # same seed, same images: identical masks and losses either way
            for key in ("loss_pos", "loss_neg", "mask_area", "loss"):
                assert terms[key].item() == pytest.approx(reference[key].item(), rel=1e-5)
