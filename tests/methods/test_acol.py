"""ACoL: the erased region, what head B sees, the loss and the fused map."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wsol.methods import build_method
from wsol.methods.acol import ACoL, erase_discriminative
from wsol.methods.cam_baseline import minmax_normalize


def test_erased_region_is_where_the_normalised_label_map_reaches_the_threshold() -> None:
    features = torch.ones(1, 2, 2, 3)
    class_maps = torch.zeros(1, 2, 2, 3)
    class_maps[0, 1] = torch.tensor(
        [[2.0, 10.0, 8.0], [9.0, 4.0, 2.0]]
    )  # normalised: 0, 1, .75, .875, .25, 0
    class_maps[0, 0] = torch.tensor([[10.0, 2.0, 2.0], [2.0, 2.0, 2.0]])  # the other class: must not matter
    out = erase_discriminative(features, class_maps, torch.tensor([1]), threshold=0.75)
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    assert torch.equal(out, expected.expand(1, 2, 2, 3))


def test_head_b_sees_the_erased_features_and_the_loss_sums_both_heads() -> None:
    method = build_method("acol", 3, {"backbone": "tiny", "head_width": 8})
    assert isinstance(method, ACoL)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    logits_a, maps_a, logits_b, maps_b = method(images, labels)
    features = method.backbone(images)
    attention = minmax_normalize(maps_a[torch.arange(2), labels])
    erased = features * (attention < 0.7)[:, None]
    assert (attention >= 0.7).any(dim=(1, 2)).all()  # the peak at least is erased
    torch.testing.assert_close(maps_b, method.head_b(erased))
    torch.testing.assert_close(logits_b, maps_b.mean(dim=(2, 3)))
    loss = method.training_loss({"image": images, "label": labels})
    torch.testing.assert_close(
        loss.total, F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels)
    )


def test_prediction_is_the_max_of_both_normalised_maps() -> None:
    method = build_method("acol", 3, {"backbone": "tiny", "head_width": 8}).eval()
    images, classes = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    with torch.no_grad():
        prediction = method.predict(images, classes)
        logits_a, maps_a, _, maps_b = method(images, classes)
    fused = torch.maximum(
        minmax_normalize(maps_a[torch.arange(2), classes]), minmax_normalize(maps_b[torch.arange(2), classes])
    )
    expected = minmax_normalize(F.interpolate(fused[:, None], size=(32, 32), mode="bilinear")[:, 0])
    torch.testing.assert_close(prediction.maps, expected)
    torch.testing.assert_close(prediction.logits, logits_a)


def test_bad_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="threshold"):
        build_method("acol", 3, {"backbone": "tiny", "threshold": 0.0})
