"""Weight loading: torchvision-layout files, key accounting, strictness, the ImageNet path offline."""

from __future__ import annotations

import logging
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from wsol.models import (
    WeightsError,
    WeightsUnavailableError,
    build_backbone,
    imagenet_file_name,
    load_backbone_weights,
)


def torchvision_resnet18_state(seed: int = 3) -> dict[str, torch.Tensor]:
    """A state_dict in torchvision's resnet18 layout (trunk + fc): a few random tensors, the rest constant."""
    state = lightweight(build_backbone("resnet18").state_dict())
    generator = torch.Generator().manual_seed(seed)
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "layer4.1.bn2.bias"):
        state[key] = torch.rand(state[key].shape, generator=generator)
    state["fc.weight"] = torch.zeros(()).expand(1000, 512)
    state["fc.bias"] = torch.zeros(1000)
    return state


def lightweight(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Same keys and shapes, stored as one-element expanded tensors (small files, fast tests)."""
    return {key: torch.full((), 0.5, dtype=value.dtype).expand(value.shape) for key, value in state.items()}


def test_loads_a_saved_torchvision_state_dict_and_reports_fc_as_dropped(tmp_path: Path) -> None:
    state = torchvision_resnet18_state()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    backbone = build_backbone("resnet18")
    report = load_backbone_weights(backbone, path)
    assert report.ok
    assert sorted(report.dropped) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == 120 and report.missing == report.unexpected == report.new == []
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_build_backbone_with_a_weights_path(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    state = torchvision_resnet18_state()
    torch.save(state, path)
    backbone = build_backbone("resnet18", large_feature_map=True, weights=path)  # strides change no shape
    assert torch.equal(backbone.layer1[0].conv2.weight, state["layer1.0.conv2.weight"])


def test_wrapped_and_ddp_prefixed_files_load(tmp_path: Path) -> None:
    state = torchvision_resnet18_state()
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    assert load_backbone_weights(build_backbone("resnet18"), path).ok


def test_missing_key_is_an_error_unless_not_strict(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = torchvision_resnet18_state()
    del state["layer1.0.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    backbone = build_backbone("resnet18")
    before = backbone.conv1.weight.clone()
    with pytest.raises(
        WeightsError, match=r"partial\.pth.*1 MISSING from the file: layer1\.0\.conv1\.weight"
    ):
        load_backbone_weights(backbone, path)
    assert torch.equal(backbone.conv1.weight, before)  # nothing copied on a strict failure
    with caplog.at_level(logging.WARNING, logger="wsol.models.weights"):
        report = load_backbone_weights(backbone, path, strict=False)
    assert report.missing == ["layer1.0.conv1.weight"] and not report.ok
    assert "layer1.0.conv1.weight" in caplog.text
    assert torch.equal(backbone.conv1.weight, state["conv1.weight"])


def test_unexpected_and_mismatched_keys_are_errors(tmp_path: Path) -> None:
    state = torchvision_resnet18_state()
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_backbone_weights(build_backbone("resnet18"), path)
    message = str(info.value)
    assert "UNEXPECTED in the file: layer5.0.conv1.weight" in message
    assert "SHAPE MISMATCH: conv1.weight (file (64, 3, 3, 3), model (64, 3, 7, 7))" in message
    report = load_backbone_weights(build_backbone("resnet18"), path, strict=False)
    assert report.unexpected == ["layer5.0.conv1.weight"] and len(report.mismatched) == 1


def test_old_checkpoints_without_batchnorm_counters_load(tmp_path: Path) -> None:
    state = {k: v for k, v in torchvision_resnet18_state().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    report = load_backbone_weights(build_backbone("resnet18"), path)
    assert report.ok and len(report.defaulted) == 20


def test_vgg_drops_classifier_and_reports_conv6_as_new(tmp_path: Path) -> None:
    own = build_backbone("vgg16").state_dict()
    state = lightweight({key: value for key, value in own.items() if key.startswith("features.")})
    state["features.28.weight"] = torch.randn(512, 512, 3, 3)
    for index in (0, 3, 6):  # torchvision's classifier.{0,3,6}: stand-ins, dropped before any shape check
        state[f"classifier.{index}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{index}.bias"] = torch.zeros(2)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    for large in (False, True):
        backbone = build_backbone("vgg16", large_feature_map=large)
        report = load_backbone_weights(backbone, path)
        assert report.ok and len(report.dropped) == 6 and report.new == ["conv6.weight", "conv6.bias"]
        assert torch.equal(backbone.features[28].weight, state["features.28.weight"])
        assert torch.equal(backbone.features[0].bias, torch.full((64,), 0.5))


def test_inception_drops_the_mixed_7_blocks_aux_and_fc(tmp_path: Path) -> None:
    state = lightweight(build_backbone("inception_v3").state_dict())
    for key in ("SPG_A3_1b.0.weight", "SPG_A3_1b.0.bias", "SPG_A3_2b.0.weight", "SPG_A3_2b.0.bias"):
        del state[key]
    extra = [
        "Mixed_7a.branch3x3_1.conv.weight",
        "Mixed_7c.branch_pool.bn.bias",
        "AuxLogits.fc.weight",
        "fc.bias",
    ]
    state.update({key: torch.zeros(1) for key in extra})
    path = tmp_path / "inception.pth"
    torch.save(state, path)
    report = load_backbone_weights(build_backbone("inception_v3", large_feature_map=True), path)
    assert report.ok and sorted(report.dropped) == sorted(extra) and len(report.new) == 4


def test_missing_file_and_unsafe_pickles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"weights file .*nope\.pth not found"):
        load_backbone_weights(build_backbone("tiny"), tmp_path / "nope.pth")
    path = tmp_path / "object.pth"
    torch.save({"conv1.weight": PickledThing(1)}, path)
    with pytest.raises(WeightsError, match=r"object\.pth: not a readable checkpoint.* a Python object"):
        load_backbone_weights(build_backbone("tiny"), path)
    torch.save({"conv1.weight": [1, 2]}, path)
    with pytest.raises(WeightsError, match="not name -> tensor"):
        load_backbone_weights(build_backbone("tiny"), path)


@dataclass
class PickledThing:
    value: int


def test_imagenet_file_names_are_torchvision_s() -> None:
    names = {name: imagenet_file_name(build_backbone(name)) for name in ("resnet18", "vgg16")}
    assert names == {"resnet18": "resnet18-f37072fd.pth", "vgg16": "vgg16-397923af.pth"}
    with pytest.raises(ValueError, match="tiny: no ImageNet weights"):
        build_backbone("tiny", weights="imagenet")


def test_imagenet_without_internet_says_which_file_to_place_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone("resnet18", weights="imagenet")
    message = str(info.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth" in message


def test_imagenet_uses_a_file_already_in_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = torchvision_resnet18_state()
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    backbone = build_backbone("resnet18", weights="imagenet")
    assert torch.equal(backbone.bn1.running_var, state["bn1.running_var"])
