"""Backbones: torchvision key layout, parameter counts, feature-map shapes and strides, errors."""

from __future__ import annotations

import pytest
import torch

from wsol.models import build_backbone

X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def torchvision_resnet18_keys() -> list[str]:
    """torchvision.models.resnet18().state_dict() keys, written from its source layout (resnet.py)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{s}" for s in bn)]
    for layer in range(1, 5):
        for block in range(2):
            prefix = f"layer{layer}.{block}"
            keys += [f"{prefix}.conv1.weight", *(f"{prefix}.bn1.{s}" for s in bn)]
            keys += [f"{prefix}.conv2.weight", *(f"{prefix}.bn2.{s}" for s in bn)]
            if block == 0 and layer > 1:
                keys += [f"{prefix}.downsample.0.weight", *(f"{prefix}.downsample.1.{s}" for s in bn)]
    return keys + ["fc.weight", "fc.bias"]


def test_resnet18_keys_equal_torchvision_without_fc() -> None:
    expected = torchvision_resnet18_keys()
    assert len(expected) == 122  # torchvision's resnet18 state_dict size
    state = build_backbone("resnet18").state_dict()
    assert list(state) == [key for key in expected if not key.startswith("fc.")]
    for key in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer4.1.bn2.num_batches_tracked",
    ):
        assert key in state
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["conv1.weight"].shape == (64, 3, 7, 7)


@pytest.mark.parametrize("large", [False, True])
def test_vgg16_keys_keep_torchvision_feature_indices(large: bool) -> None:
    state = build_backbone("vgg16", large_feature_map=large).state_dict()
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # torchvision vgg16 "D" conv indices
    expected = [f"features.{i}.{s}" for i in convs for s in ("weight", "bias")] + [
        "conv6.weight",
        "conv6.bias",
    ]
    assert list(state) == expected
    assert state["features.0.weight"].shape == (64, 3, 3, 3)
    assert state["features.28.weight"].shape == (512, 512, 3, 3)
    assert state["conv6.weight"].shape == (1024, 512, 3, 3)


def test_inception_keys_follow_torchvision_names() -> None:
    state = build_backbone("inception_v3").state_dict()
    for key, shape in {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "SPG_A3_2b.0.weight": (1024, 1024, 3, 3),
    }.items():
        assert state[key].shape == shape, key
    assert "Mixed_6e.branch7x7dbl_5.bn.num_batches_tracked" in state
    assert not any(key.startswith(("Mixed_7", "AuxLogits", "fc.")) for key in state)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("resnet18", 11_689_512 - (512 * 1000 + 1000)),  # torchvision's total minus fc
        ("resnet34", 21_797_672 - (512 * 1000 + 1000)),
        ("resnet50", 25_557_032 - (2048 * 1000 + 1000)),
        ("resnet101", 44_549_160 - (2048 * 1000 + 1000)),
        ("vgg16", 14_714_688 + 512 * 1024 * 9 + 1024),  # torchvision's features + conv6
    ],
)
def test_parameter_counts_match_torchvision(name: str, count: int) -> None:
    assert sum(p.numel() for p in build_backbone(name).parameters()) == count


def basic_conv(cin: int, cout: int, kh: int, kw: int | None = None) -> int:
    """Parameters of torchvision's Inception ``BasicConv2d``: conv without bias + BatchNorm affine."""
    return cin * cout * kh * (kh if kw is None else kw) + 2 * cout


def test_inception_trunk_matches_torchvision_minus_the_dropped_blocks() -> None:
    def inception_e(cin: int) -> int:
        return (
            basic_conv(cin, 320, 1)
            + basic_conv(cin, 384, 1)
            + 2 * basic_conv(384, 384, 1, 3)
            + 2 * basic_conv(384, 384, 3, 1)
            + basic_conv(cin, 448, 1)
            + basic_conv(448, 384, 3)
            + basic_conv(cin, 192, 1)
        )

    mixed_7a = (
        basic_conv(768, 192, 1)
        + basic_conv(192, 320, 3)
        + basic_conv(768, 192, 1)
        + basic_conv(192, 192, 1, 7)
        + basic_conv(192, 192, 7, 1)
        + basic_conv(192, 192, 3)
    )
    aux_logits = basic_conv(768, 128, 1) + basic_conv(128, 768, 5) + 768 * 1000 + 1000
    fc = 2048 * 1000 + 1000
    torchvision_total = 27_161_264  # torchvision.models.inception_v3() with aux_logits
    expected = torchvision_total - (mixed_7a + inception_e(1280) + inception_e(2048) + aux_logits + fc)
    backbone = build_backbone("inception_v3")
    trunk = sum(p.numel() for name, p in backbone.named_parameters() if not name.startswith("SPG_A3"))
    assert trunk == expected == 8_965_856


@pytest.mark.parametrize(
    ("name", "options", "stride", "shape"),
    [
        ("resnet18", {}, 32, (1, 512, 2, 2)),
        ("resnet18", {"output_stride": 16}, 16, (1, 512, 4, 4)),
        ("resnet18", {"large_feature_map": True}, 8, (1, 512, 8, 8)),
        ("resnet50", {"output_stride": 16}, 16, (1, 2048, 4, 4)),
        ("vgg16", {}, 16, (1, 1024, 4, 4)),
        ("vgg16", {"large_feature_map": True}, 8, (1, 1024, 8, 8)),
        ("inception_v3", {}, 16, (1, 1024, 4, 4)),
        ("inception_v3", {"large_feature_map": True}, 8, (1, 1024, 8, 8)),
        ("tiny", {}, 8, (1, 64, 8, 8)),
        ("tiny", {"large_feature_map": True}, 4, (1, 64, 16, 16)),
    ],
)
def test_feature_map_shapes_and_strides(name: str, options: dict, stride: int, shape: tuple) -> None:
    backbone = build_backbone(name, **options).eval()
    with torch.no_grad():
        features = backbone(X64)
    assert backbone.stride == stride
    assert backbone.out_channels == shape[1]
    assert tuple(features.shape) == shape


def test_inception_feature_map_at_224_is_14_by_14() -> None:
    # wsolevaluation's InceptionCam: 14×14 at 224 px (28×28 with large_feature_map)
    backbone = build_backbone("inception_v3").eval()
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 224, 224)).shape == (1, 1024, 14, 14)


@pytest.mark.parametrize("name", ["resnet18", "tiny"])
def test_stages_resolutions_and_channels(name: str) -> None:
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        stages = backbone.stages(X64)
        features = backbone(X64)
    assert [s.shape[1] for s in stages] == backbone.stage_channels
    sizes = [s.shape[-1] for s in stages]
    assert sizes[:3] == [32, 16, 16]  # H/2 (conv1), H/4 (maxpool), layer1
    assert sizes[-1] == 64 // backbone.stride
    assert torch.equal(stages[-1], features)
    assert backbone.stage_channels == (
        [64, 64, 64, 128, 256, 512] if name == "resnet18" else [16, 16, 16, 24, 32, 64]
    )


def test_same_seed_gives_same_weights_and_outputs() -> None:
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        backbone = build_backbone("tiny").eval()
        with torch.no_grad():
            outputs.append(backbone(X64))
    assert torch.equal(outputs[0], outputs[1])


def test_high_lr_parameters_follow_wsolevaluation() -> None:
    base, high = build_backbone("resnet18").split_parameters()
    resnet = build_backbone("resnet18")
    high_names = {name for name, p in resnet.named_parameters() if name.startswith("layer4.")}
    assert len(high) == len(high_names) and len(base) + len(high) == len(list(resnet.parameters()))
    base, high = build_backbone("tiny").split_parameters()
    assert high == []


def test_unknown_backbone_lists_the_registry() -> None:
    # Every registered backbone is checked in tests/test_registry_contracts.py.
    with pytest.raises(ValueError, match=r"unknown backbone 'nope'; expected one of \['"):
        build_backbone("nope")


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'"):
        build_backbone("resnet19")
    with pytest.raises(ValueError, match=r"backbone 'vgg16': unknown option\(s\) \['output_stride'\]"):
        build_backbone("vgg16", output_stride=8)
    with pytest.raises(ValueError, match="large_feature_map=True means output_stride=8"):
        build_backbone("resnet18", large_feature_map=True, output_stride=16)
    with pytest.raises(ValueError, match="output_stride must be 4, 8, 16 or 32"):
        build_backbone("resnet18", output_stride=12)
    with pytest.raises(ValueError, match=r"tiny: expected a float image batch \(B, 3, H, W\)"):
        build_backbone("tiny")(torch.zeros(1, 1, 32, 32))
