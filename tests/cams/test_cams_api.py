"""The extractor contract: targets, layers, outputs, post-processing and clear errors."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.cams import ClassScore, GradCAM, build_extractor, locate_target_layer

RAW = {"relu": False, "normalize": None}


def test_unknown_name_lists_the_registry() -> None:
    # Every registered CAM is checked in tests/test_registry_contracts.py.
    with pytest.raises(ValueError, match=r"unknown CAM method 'nope'; expected one of \['"):
        build_extractor("nope", nn.Linear(1, 1))


def test_targets_none_is_the_predicted_class(small_net) -> None:
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    with GradCAM(small_net, "body") as extractor:
        auto = extractor(x)
        predicted = extractor.last_logits.argmax(1)
        explicit = extractor(x, predicted)
    torch.testing.assert_close(auto, explicit)


def test_one_target_broadcasts_and_list_tensor_callable_agree(small_net) -> None:
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    with GradCAM(small_net, "body") as extractor:
        by_int = extractor(x, 1, **RAW)
        by_list = extractor(x, [1, 1, 1], **RAW)
        by_tensor = extractor(x, torch.tensor([1]), **RAW)
        by_callable = extractor(x, ClassScore(1), **RAW)
        by_callables = extractor(x, [ClassScore(1)] * 3, **RAW)
        by_numpy = extractor(x, list(np.array([1, 1, 1])), **RAW)  # NumPy integers
    for other in (by_list, by_tensor, by_callable, by_callables, by_numpy):
        torch.testing.assert_close(by_int, other)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([0, 1], "got 2 targets for a batch of 3"),
        ([ClassScore(0)] * 2, "got 2 targets for a batch of 3"),
        (7, r"must lie in \[0, 4\)"),
        (-1, r"must lie in \[0, 4\)"),
        (torch.tensor([0.5]), "integer tensor"),
        ("cat", "expected a class index"),
    ],
)
def test_bad_targets_are_rejected(small_net, targets, message: str) -> None:
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    with GradCAM(small_net, "body") as extractor, pytest.raises(ValueError, match=message):
        extractor(x, targets)


def test_callable_target_must_return_a_scalar(small_net) -> None:
    with GradCAM(small_net, "body") as extractor, pytest.raises(ValueError, match="scalar tensor"):
        extractor(torch.randn(1, 3, 8, 8, dtype=torch.float64), lambda out: out)


def test_bad_layer_and_options_are_rejected(small_net) -> None:
    with pytest.raises(ValueError, match="no submodule 'layer9'"):
        GradCAM(small_net, "layer9")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(small_net, nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="fuse"):
        GradCAM(small_net, "body", fuse="sum")
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    with GradCAM(small_net, "body") as extractor:
        with pytest.raises(ValueError, match="mode"):
            extractor(x, mode="linear")
        with pytest.raises(ValueError, match="upsample_to"):
            extractor(x, upsample_to=(0, 4))
        with pytest.raises(ValueError, match="normalize"):
            extractor(x, normalize="zscore")
    with GradCAM(small_net, "fc") as extractor, pytest.raises(ValueError, match=r"must be \(B, K, h, w\)"):
        extractor(x)
    with pytest.raises(ValueError, match="needs class-index targets"):
        build_extractor("cam", small_net, "body")(x, ClassScore(0))


def test_postprocessing_order_and_ranges(small_net) -> None:
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with GradCAM(small_net, "body") as extractor:
        raw = extractor(x, 0, **RAW)
        relu = extractor(x, 0, relu=True, normalize=None)
        up = extractor(x, 0, upsample_to="input", mode="bicubic")
        by_max = extractor(x, 0, normalize="max")
        sized = extractor(x, 0, upsample_to=(5, 7), mode="nearest")
    assert raw.shape == (2, 8, 8) and up.shape == (2, 16, 16) and sized.shape == (2, 5, 7)
    torch.testing.assert_close(relu, raw.clamp_min(0))
    # ReLU, then bicubic resize, then min-max: exactly [0, 1] despite bicubic overshoot.
    expected = F.interpolate(raw.clamp_min(0)[:, None], size=(16, 16), mode="bicubic", align_corners=False)[
        :, 0
    ]
    low = expected.flatten(1).min(1).values[:, None, None]
    high = expected.flatten(1).max(1).values[:, None, None]
    torch.testing.assert_close(up, (expected - low) / (high - low))
    torch.testing.assert_close(by_max, relu / relu.flatten(1).max(1).values[:, None, None])


def test_constant_map_normalises_to_zeros() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.zero_()
    with GradCAM(model, "0") as extractor:
        maps = extractor(torch.randn(2, 3, 4, 4))
    assert torch.equal(maps, torch.zeros(2, 4, 4))


def _minmax(maps: Tensor) -> Tensor:
    low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
    return (maps - low) / (high - low)


def test_several_layers_are_fused(small_net) -> None:
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with GradCAM(small_net, "body.1") as shallow, GradCAM(small_net, "body") as deep:
        a = shallow(x, 0)
        b = F.interpolate(deep(x, 0)[:, None], size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    with GradCAM(small_net, ["body.1", small_net.body], fuse="max") as fused_max:
        torch.testing.assert_close(fused_max(x, 0), _minmax(torch.maximum(a, _minmax(b))))
    with GradCAM(small_net, ["body.1", "body"], fuse="mean") as fused_mean:
        torch.testing.assert_close(fused_mean(x, 0), _minmax((a + _minmax(b)) / 2))


class HeadOutput(NamedTuple):
    logits: Tensor
    class_maps: Tensor


class PoolingHeadModel(nn.Module):
    """Backbone + 1x1-conv class maps + GAP, returning (logits, class_maps) like wsol's pooling heads."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(5, 3, 1)

    def forward(self, x: Tensor) -> HeadOutput:
        maps = self.head(self.backbone(x))
        return HeadOutput(maps.mean((2, 3)), maps)


def test_cam_of_a_conv_head_is_its_class_map_minus_bias() -> None:
    model = PoolingHeadModel().eval()
    x = torch.randn(2, 3, 6, 6)
    with build_extractor("cam", model, "backbone") as extractor:
        maps = extractor(x, [2, 1], **RAW)
        logits = extractor.last_logits
    out = model(x)
    torch.testing.assert_close(logits, out.logits)
    expected = (
        torch.stack([out.class_maps[0, 2], out.class_maps[1, 1]]) - model.head.bias[[2, 1]][:, None, None]
    )
    torch.testing.assert_close(maps, expected.detach())


def test_output_selector_and_auto_located_layer() -> None:
    model = PoolingHeadModel().eval()
    x = torch.randn(2, 3, 6, 6)
    assert locate_target_layer(model, x) == "head"
    with (
        GradCAM(model, output_selector=lambda out: 2 * out.logits) as doubled,
        GradCAM(model, "head") as plain,
    ):
        torch.testing.assert_close(doubled(x, 0, **RAW), 2 * plain(x, 0, **RAW))
        assert [name for name, _ in doubled.layers] == ["head"]


class TokenModel(nn.Module):
    """A transformer-shaped toy: (B, C, h, w) → tokens (B, 1 + h·w, C) with a class token → linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 4, 1)
        self.mix = nn.Linear(4, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
        return self.fc(self.mix(tokens)[:, 1:].mean(1))


def test_reshape_transform_for_tokens_matches_grid_layout() -> None:
    model = TokenModel().eval()
    x = torch.randn(2, 3, 4, 5)

    def to_grid(tokens: Tensor) -> Tensor:
        return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, 4, 5)

    with GradCAM(model, "mix", reshape_transform=to_grid) as extractor:
        maps = extractor(x, 1, **RAW)
    # By hand: A = mix(tokens) on the grid, g = W_fc[1] / (h·w) is constant, so w = mean g = W_fc[1] / 20.
    with torch.no_grad():
        tokens = model.embed(x).flatten(2).transpose(1, 2)
        grid = to_grid(model.mix(torch.cat([tokens.mean(1, keepdim=True), tokens], 1)))
        expected = torch.einsum("k,bkhw->bhw", model.fc.weight[1] / 20, grid)
    torch.testing.assert_close(maps, expected)


def test_gradients_without_grad_mode_frozen_model_and_clean_param_grads(small_net) -> None:
    for p in small_net.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with GradCAM(small_net, "body") as extractor:
        with torch.no_grad():
            under_no_grad = extractor(x, 0)
        frozen = extractor(x, 0)
    torch.testing.assert_close(under_no_grad, frozen)
    for p in small_net.parameters():
        p.requires_grad_(True)
    with GradCAM(small_net, "body") as extractor:
        torch.testing.assert_close(extractor(x, 0), frozen)
    assert all(p.grad is None for p in small_net.parameters())
    with (
        GradCAM(small_net, "body") as extractor,
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="inference"),
    ):
        extractor(x, 0)


def test_input_device_and_type_checks(small_net) -> None:
    with GradCAM(small_net, "body") as extractor:
        with pytest.raises(TypeError, match="inputs"):
            extractor([1, 2, 3])
        with pytest.raises(ValueError, match="non-empty batch"):
            extractor(torch.zeros(0, 3, 8, 8, dtype=torch.float64))
        with pytest.raises(ValueError, match="'input' needs"):
            extractor(torch.zeros(2, 3), upsample_to="input")


def test_ablationcam_replays_the_cached_layer_output_instead_of_recomputing_it() -> None:
    """The ablated forwards swap the target layer for its cached output: it runs once per call, and the
    model is restored afterwards (also when a forward fails)."""
    from wsol.models import build_classifier

    torch.manual_seed(0)
    model = build_classifier("tiny", "gap", 3).eval()
    layer = model.get_submodule("backbone")
    calls = []
    handle = layer.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    with build_extractor("ablationcam", model, "backbone", batch_size=5) as extractor:
        maps = extractor(x, torch.tensor([0, 2]))
    handle.remove()
    assert len(calls) == 1 and model.get_submodule("backbone") is layer
    assert maps.shape[0] == 2 and torch.isfinite(maps).all()
    with build_extractor("ablationcam", model, "backbone") as extractor:
        with pytest.raises(ValueError, match="expected features"):
            extractor.ablated_outputs(x, 0, torch.zeros(2, 3))  # not a feature map: the head raises
    assert model.get_submodule("backbone") is layer
