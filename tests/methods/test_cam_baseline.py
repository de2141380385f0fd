"""CAM-family baseline method: map selection, upsampling, normalisation, loss and parameter groups."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wsol.methods import build_method
from wsol.methods.cam_baseline import PoolingHeadMethod, minmax_normalize


def test_minmax_normalize_hand_computed() -> None:
    maps = torch.tensor([[[1.0, 3.0], [5.0, 2.0]], [[4.0, 4.0], [4.0, 4.0]]])
    expected = torch.tensor([[[0.0, 0.5], [1.0, 0.25]], [[0.0, 0.0], [0.0, 0.0]]])
    assert torch.equal(minmax_normalize(maps), expected)
    with_nan = torch.tensor([[[float("nan"), 1.0], [0.0, 2.0]]])
    assert torch.equal(minmax_normalize(with_nan), torch.zeros(1, 2, 2))


@settings(max_examples=50, deadline=None)
@given(arrays("float32", (2, 3, 4), elements=st.floats(-1e3, 1e3, width=32)))
def test_minmax_normalize_range_and_affine_invariance(values) -> None:  # type: ignore[no-untyped-def]
    maps = torch.from_numpy(values)
    out = minmax_normalize(maps)
    assert out.min() >= 0 and out.max() <= 1
    for i in range(2):
        if maps[i].max() > maps[i].min() + 1e-2:
            assert out[i].max() == 1 and out[i].min() == 0
            torch.testing.assert_close(
                minmax_normalize(3 * maps[i : i + 1] + 7), out[i : i + 1], atol=1e-4, rtol=0
            )


@pytest.mark.parametrize("head", ["gap", "max", "lse", "wildcat", "mil", "wgap"])
def test_predict_is_the_upsampled_class_map(head: str) -> None:
    method = build_method("cam", 3, {"backbone": "tiny", "head": head})
    assert isinstance(method, PoolingHeadMethod)
    method.eval()
    images = torch.randn(2, 3, 32, 32)
    classes = torch.tensor([2, 0])
    with torch.no_grad():
        prediction = method.predict(images, classes)
        output = method(images)
    raw = output.class_maps[torch.arange(2), classes][:, None]
    expected = minmax_normalize(F.interpolate(raw, size=(32, 32), mode="bilinear", align_corners=False)[:, 0])
    assert prediction.maps.shape == (2, 32, 32) and prediction.masks is None
    torch.testing.assert_close(prediction.maps, expected)
    torch.testing.assert_close(prediction.logits, output.logits)
    with torch.no_grad():
        predicted = method.predict(images)
    chosen = output.logits.argmax(1)
    raw = output.class_maps[torch.arange(2), chosen][:, None]
    expected = minmax_normalize(F.interpolate(raw, size=(32, 32), mode="bilinear", align_corners=False)[:, 0])
    torch.testing.assert_close(predicted.maps, expected)


def test_training_loss_is_cross_entropy_and_groups_cover_parameters() -> None:
    method = PoolingHeadMethod(4, backbone="tiny", head="gap", new_layers_lr_mult=10.0)
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 3, 1])
    loss = method.training_loss({"image": images, "label": labels})
    torch.testing.assert_close(loss.total, F.cross_entropy(method(images).logits, labels))
    groups = method.parameter_groups(0.1)
    grouped = [p for group in groups for p in group["params"]]
    assert len(grouped) == len(set(map(id, grouped))) == len(list(method.parameters()))
    head_ids = {id(p) for p in method.classifier.head.parameters()}
    for group in groups:
        if any(id(p) in head_ids for p in group["params"]):
            assert group["lr"] == pytest.approx(1.0)


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        PoolingHeadMethod(2, head="avg")
    with pytest.raises(ValueError, match="new_layers_lr_mult"):
        PoolingHeadMethod(2, new_layers_lr_mult=0)


def test_backbone_weights_file_is_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = PoolingHeadMethod(3, backbone="tiny", head="gap")
    path = tmp_path / "tiny.pth"
    torch.save(source.classifier.backbone.state_dict(), path)
    torch.manual_seed(123)
    loaded = PoolingHeadMethod(3, backbone="tiny", head="gap", weights=str(path))
    for key, value in source.classifier.backbone.state_dict().items():
        assert torch.equal(loaded.classifier.backbone.state_dict()[key], value), key
