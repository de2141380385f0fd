"""The MinMaxEntropy method: losses composed as in seed 000 Eq. 9 / TMI, erasing step, schedules, predict."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor

from wsol.methods import build_method
from wsol.methods.losses import size_barrier
from wsol.methods.minmax_entropy import MinMaxEntropy

NUM_CLASSES = 3


def _method(**options: Any) -> MinMaxEntropy:
    torch.manual_seed(0)
    wildcat = {"kmax": 0.3, "modalities": 2, **options.pop("wildcat", {})}
    defaults: dict[str, Any] = {"backbone": {"name": "tiny"}, "wildcat": wildcat}
    method = build_method("minmax_entropy", NUM_CLASSES, {**defaults, **options})
    assert isinstance(method, MinMaxEntropy)
    return method


def _batch(size: int = 4, side: int = 32) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(size, 3, side, side, generator=generator),
        "label": torch.arange(size) % NUM_CLASSES,
    }


def _hand_mask(method: MinMaxEntropy, images: Tensor) -> tuple[Tensor, Tensor]:
    """Localizer scores and M⁺ from the raw network, the paper's steps written out here (§3.3, Eq. 11)."""
    output = method.localizer_head(method.backbone(images))
    weights = output.logits.softmax(dim=1)
    aggregated = (weights[:, :, None, None] * output.class_maps).sum(dim=1, keepdim=True)
    upscaled = torch.nn.functional.interpolate(
        aggregated, size=images.shape[-2:], mode="bilinear", align_corners=True
    )
    low = upscaled.amin(dim=(1, 2, 3), keepdim=True)
    high = upscaled.amax(dim=(1, 2, 3), keepdim=True)
    return output.logits, 1.0 / (1.0 + torch.exp(-8.0 * ((upscaled - low) / (high - low) - 0.5)))


def _expected_total(method: MinMaxEntropy, batch: dict[str, Tensor], neg: Any, neg_weight: float) -> Tensor:
    """Eq. 9 from tensors computed in the test: log-softmax by hand, no helper of the module."""
    images, labels = batch["image"], batch["label"]
    rows = torch.arange(labels.shape[0])
    scores, mask = _hand_mask(method, images)

    def log_probs(x: Tensor) -> Tensor:  # C sees X± resized by the default classifier_scale 0.5
        half = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        logits = method.classifier_head(method.backbone(half)).logits
        return logits - logits.exp().sum(dim=1, keepdim=True).log()

    loc = -(scores - scores.exp().sum(dim=1, keepdim=True).log())[rows, labels].mean()
    pos = -log_probs(images * mask)[rows, labels].mean()
    return loc + pos + neg_weight * neg(log_probs(images * (1 - mask))).mean()


@pytest.mark.parametrize(
    ("variant", "neg"),
    [
        ("paper", lambda log_p: -log_p.mean(dim=1)),
        ("sem", lambda log_p: -log_p.mean(dim=1) / math.log(2.0)),
        ("eem", lambda log_p: (log_p.exp() * log_p).sum(dim=1) / math.log(2.0)),
    ],
)
def test_training_loss_composes_the_paper_terms(variant: str, neg: Any) -> None:
    method = _method(variant=variant, lambda_neg=0.5)
    method.train()
    batch = _batch()
    output = method.training_loss(batch)
    expected = _expected_total(method, batch, neg, 0.5)
    assert output.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(output.terms) >= {"loss_loc", "loss_pos", "loss_neg", "mask_area"}


def test_size_constraint_adds_the_log_barrier_on_both_regions() -> None:
    method = _method(
        variant="sem",
        size_constraint={"enabled": True, "init_t": 5.0},
        mask={"detach": False},
        lambda_neg=1e-7,
    )
    batch = _batch()
    output = method.training_loss(batch)
    _, mask = method.localize(batch["image"])
    assert output.terms["loss_size"].item() == pytest.approx(size_barrier(mask, 5.0).item(), rel=1e-6)
    # s+ and s- of a 32x32 image are in (0, 1024): both barriers sit on the log branch, -(1/t) log s.
    s_pos = mask.flatten(1).sum(1)
    by_hand = (-(torch.log(s_pos) + torch.log(1024 - s_pos)) / 5.0).mean()
    assert output.terms["loss_size"].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_detached_mask_keeps_classifier_losses_off_the_localizer_head() -> None:
    batch = _batch()
    for detach, expect_grad in [(True, False), (False, True)]:
        method = _method(mask={"detach": detach}, loc_weight=0.0)
        method.training_loss(batch).total.backward()
        grad = method.localizer_head.classifier.weight.grad
        has_grad = grad is not None and bool(grad.abs().sum() > 0)
        assert has_grad is expect_grad
        assert method.classifier_head.classifier.weight.grad is not None


def test_erasing_step_backpropagates_once_per_step_then_once_for_the_classifier() -> None:
    method = _method(erasing={"depth": 3, "start_epoch": 1})
    batch = _batch()
    calls: list[Tensor] = []

    def backward(loss: Tensor) -> None:
        calls.append(loss.detach())
        loss.backward()

    method.training_step(batch, backward)
    assert len(calls) == 1  # epoch 0: joint loss, no erasing
    method.on_train_epoch_end(0)
    assert method.erasing_active
    calls.clear()
    method.zero_grad()
    terms = method.training_step(batch, backward)
    steps = int(terms["erasing_steps"])
    assert 1 <= steps <= 3 and len(calls) == steps + 1
    assert 0 < terms["erasing_forwarded"].item() <= steps
    assert method.localizer_head.classifier.weight.grad is not None
    assert method.classifier_head.classifier.weight.grad is not None
    assert 0 <= terms["mask_area"].item() <= 1


def test_predict_uses_the_classifier_on_the_decidable_region() -> None:
    method = _method(mask={"normalization": "batch"}).eval()
    images = _batch(3)["image"]
    with torch.no_grad():
        prediction = method.predict(images)
        _, mask = method.localize(images, normalization="per_sample")
        logits = method.classify(images * mask)
    assert prediction.maps.shape == (3, 32, 32)
    assert torch.allclose(prediction.maps, mask[:, 0])
    assert torch.allclose(prediction.logits, logits)
    assert prediction.masks is not None and torch.equal(prediction.masks, prediction.maps > 0.5)
    assert prediction.maps.min() >= 0 and prediction.maps.max() <= 1
    # Per-sample normalisation at inference: a sample's map does not depend on the others.
    with torch.no_grad():
        alone = method.predict(images[:1]).maps
    assert torch.allclose(alone, prediction.maps[:1], atol=1e-5)


@pytest.mark.parametrize("class_source", ["masked", "localizer"])
def test_class_source_picks_the_classifier_on_x_plus_or_the_localizer(class_source: str) -> None:
    """The two heads are rigged to disagree (class biases 0, 0, 9 vs 9, 0, 0, weights shrunk 1000×): the
    prediction follows the option, and the map is the same either way."""
    method = _method(class_source=class_source).eval()
    for head, favoured in ((method.localizer_head, 2), (method.classifier_head, 0)):
        bias = 9.0 * torch.nn.functional.one_hot(torch.tensor(favoured), NUM_CLASSES).float()
        with torch.no_grad():
            head.classifier.weight.mul_(1e-3)
            head.classifier.bias.copy_(bias.repeat_interleave(head.modalities))
    images = _batch(3)["image"]
    with torch.no_grad():
        prediction = method.predict(images)
        reference = _method(class_source="masked").eval()
        reference.load_state_dict(method.state_dict())
        masked = reference.predict(images)
    expected = 2 if class_source == "localizer" else 0
    assert prediction.logits.argmax(dim=1).tolist() == [expected] * 3
    assert torch.equal(prediction.maps, masked.maps)


def test_same_seed_same_numbers() -> None:
    batch = _batch()
    first = _method(wildcat={"dropout": 0.5}).training_loss(batch).total
    second = _method(wildcat={"dropout": 0.5}).training_loss(batch).total
    assert torch.equal(first, second)


def test_schedules_follow_the_tmi_constants_and_round_trip() -> None:
    method = _method(
        mask={"sigma": 0.15, "sigma_step": 0.001, "sigma_max": 0.2, "detach": False},
        size_constraint={"enabled": True, "init_t": 5.0},
    )
    for epoch in range(10):
        method.on_train_epoch_end(epoch)
    assert method.sigma == pytest.approx(0.16)
    assert method.t == pytest.approx(5.0 * 1.01**10)
    for epoch in range(10, 100):
        method.on_train_epoch_end(epoch)
    assert method.sigma == pytest.approx(0.2)  # capped
    assert method.t == pytest.approx(10.0)  # 5 * 1.01**100 = 13.5, capped at max_t
    state = method.extra_state_for_checkpoint()
    restored = _method(size_constraint={"enabled": True}, mask={"detach": False})
    restored.load_extra_state(state)
    assert (restored.epoch, restored.sigma, restored.t) == (100, method.sigma, method.t)
    with pytest.raises(KeyError, match="sigma"):
        restored.load_extra_state({"epoch": 1, "t": 5.0})


def test_invalid_options_are_named() -> None:
    with pytest.raises(ValueError, match="class_source"):
        _method(class_source="full")
    with pytest.raises(ValueError, match=r"set method\.options\.mask\.detach=false"):
        _method(size_constraint={"enabled": True})
    with pytest.raises(ValueError, match=r"set method\.options\.erasing\.depth=0"):
        _method(size_constraint={"enabled": True}, mask={"detach": False}, erasing={"depth": 4})
    with pytest.raises(ValueError, match="variant"):
        _method(variant="kl")
    with pytest.raises(ValueError, match="classifier_scale"):
        _method(classifier_scale=0.0)
    with pytest.raises(KeyError, match="label"):
        _method().training_loss({"image": torch.zeros(1, 3, 32, 32)})
