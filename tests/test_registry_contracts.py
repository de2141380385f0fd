"""The contract of every registered backbone, head, method, CAM and importer, parametrised over registries.

A new registry entry is tested here without a line of its own (as timm tests every ``list_models()`` name):
shapes, value ranges, finite losses that reach the parameters, ``state_dict`` round trips into a freshly
built instance, hooks released after every CAM extraction (also when it fails), clear errors on an empty
source folder. A method that cannot be built from its defaults on the ``tiny`` backbone adds its smallest
options to ``METHOD_OPTIONS``; a CAM with a costly default adds a cheaper setting to ``CAM_OPTIONS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from wsol.cams import CAM_METHODS, build_extractor
from wsol.data.importers import IMPORTERS, SourceLayoutError, import_dataset
from wsol.methods import METHODS, CAMSource, WSOLMethod, build_method
from wsol.models import (
    BACKBONES,
    HEADS,
    Backbone,
    StagedBackbone,
    build_backbone,
    build_classifier,
    build_head,
)

NUM_CLASSES = 3
SIDE = 32
BACKBONE_SIDE = 64
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "acol": {"backbone": "tiny"},
    "minmax_entropy": {"backbone": {"name": "tiny"}},
    "fcam": {"classifier_epochs": 1},
    "negev": {"classifier_epochs": 1},
    "weight_map": {"encoder": "tiny", "classifier": {"backbone": "tiny"}},  # + classifier.weights (a fixture)
}
CAM_OPTIONS: dict[str, dict[str, Any]] = {
    "smoothgradcampp": {"num_samples": 2},
    "sscam": {"num_samples": 1},
    "iscam": {"num_samples": 2},
}


# ------------------------------------------------------------------------------------------------- backbones
@pytest.fixture(scope="module", params=sorted(BACKBONES))
def backbone(request: pytest.FixtureRequest) -> Backbone:
    torch.manual_seed(0)
    return build_backbone(request.param).eval()


def test_backbone_output_shape_and_stride(backbone: Backbone) -> None:
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, BACKBONE_SIDE, BACKBONE_SIDE))
    side = BACKBONE_SIDE // backbone.stride
    assert features.shape == (2, backbone.out_channels, side, side)
    assert torch.isfinite(features).all()


def test_backbone_rejects_a_non_image_batch_naming_itself(backbone: Backbone) -> None:
    with pytest.raises(ValueError, match=f"{backbone.name}: expected a float image batch"):
        backbone(torch.zeros(1, 1, BACKBONE_SIDE, BACKBONE_SIDE))


def test_backbone_state_dict_round_trip(backbone: Backbone) -> None:
    torch.manual_seed(1)
    fresh = build_backbone(backbone.name).eval()
    fresh.load_state_dict(backbone.state_dict(), strict=True)
    x = torch.randn(1, 3, BACKBONE_SIDE, BACKBONE_SIDE)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), backbone(x), rtol=0, atol=0)
    assert sorted(backbone.convert_state_dict(backbone.state_dict())) == sorted(backbone.state_dict())


def test_backbone_stages_when_declared(backbone: Backbone) -> None:
    if not isinstance(backbone, StagedBackbone):
        assert not hasattr(backbone, "stage_channels")
        return
    with torch.no_grad():
        maps = backbone.stages(torch.randn(1, 3, BACKBONE_SIDE, BACKBONE_SIDE))
    assert [m.shape[1] for m in maps] == list(backbone.stage_channels)
    sides = [m.shape[-1] for m in maps]
    assert sides == sorted(sides, reverse=True) and sides[-1] >= BACKBONE_SIDE // backbone.stride // 2


def test_backbone_high_lr_prefixes_name_own_parameters(backbone: Backbone) -> None:
    names = [name for name, _ in backbone.named_parameters()]
    for prefix in (*backbone.high_lr_prefixes, *backbone.new_layer_prefixes):
        assert any(name.startswith(prefix) for name in names), prefix


# ------------------------------------------------------------------------------------------------- heads
@pytest.fixture(scope="module", params=sorted(HEADS))
def head_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def head(head_name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_head(head_name, 8, NUM_CLASSES)


def test_head_shapes_and_gradients(head: nn.Module) -> None:
    features = torch.randn(2, 8, 5, 5, requires_grad=True)
    output = head(features)
    assert output.logits.shape == (2, NUM_CLASSES) and output.class_maps.shape == (2, NUM_CLASSES, 5, 5)
    assert torch.isfinite(output.logits).all() and torch.isfinite(output.class_maps).all()
    head.zero_grad()
    output.logits.sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())


def test_head_rejects_wrong_channels(head: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"expected features \(B, 8, h, w\)"):
        head(torch.randn(2, 7, 5, 5))


def test_head_state_dict_round_trip(head_name: str, head: nn.Module) -> None:
    torch.manual_seed(1)
    fresh = build_head(head_name, 8, NUM_CLASSES)
    fresh.load_state_dict(head.state_dict(), strict=True)
    features = torch.randn(2, 8, 5, 5)
    head.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(features).logits, head(features).logits, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------- methods
def _batch(size: int = 4) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(size, 1, SIDE, SIDE)
    masks[:, :, 8:24, 8:24] = 1.0
    return {
        "image": torch.randn(size, 3, SIDE, SIDE, generator=generator),
        "label": torch.arange(size) % NUM_CLASSES,
        "mask": masks,
        "ignore": torch.zeros(size, 1, SIDE, SIDE, dtype=torch.bool),
        "has_mask": torch.ones(size, dtype=torch.bool),
        "has_object": torch.ones(size, dtype=torch.bool),
        "boxes": [torch.tensor([[8.0, 8.0, 24.0, 24.0]]) for _ in range(size)],
        "image_id": [f"image{i}.png" for i in range(size)],
        "orig_size": torch.full((size, 2), SIDE, dtype=torch.int64),
    }


@pytest.fixture(scope="module")
def method_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    weights = tmp_path_factory.mktemp("contracts") / "classifier.pth"
    torch.save(build_classifier("tiny", "wgap", NUM_CLASSES).state_dict(), weights)
    options = {name: dict(values) for name, values in METHOD_OPTIONS.items()}
    options["weight_map"]["classifier"] = {"backbone": "tiny", "weights": str(weights)}
    return options


@pytest.fixture(scope="module", params=sorted(METHODS))
def method_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def method(method_name: str, method_options: dict[str, dict[str, Any]]) -> WSOLMethod:
    torch.manual_seed(0)
    return build_method(method_name, NUM_CLASSES, method_options.get(method_name, {}))


def _predict(method: WSOLMethod, images: Tensor, classes: Tensor | None = None) -> Any:
    method.eval()
    with torch.no_grad():
        return method.predict(images, classes)


def test_method_prediction_contract(method: WSOLMethod) -> None:
    batch = _batch()
    for classes in (None, batch["label"]):
        prediction = _predict(method, batch["image"], classes)
        assert prediction.logits.shape == (4, NUM_CLASSES) and torch.isfinite(prediction.logits).all()
        assert prediction.maps.shape == (4, SIDE, SIDE) and torch.isfinite(prediction.maps).all()
        assert float(prediction.maps.min()) >= 0.0 and float(prediction.maps.max()) <= 1.0
        assert prediction.masks is None or prediction.masks.shape == (4, SIDE, SIDE)


def test_method_training_step_is_finite_and_reaches_parameters(method: WSOLMethod) -> None:
    method.train()
    method.zero_grad()
    terms = method.training_step(_batch(), lambda loss: loss.backward())
    assert "loss" in terms and all(torch.isfinite(torch.as_tensor(v)).all() for v in terms.values())
    grads = [p.grad for p in method.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    method.zero_grad()


def test_method_parameter_groups_hold_each_trainable_parameter_once(method: WSOLMethod) -> None:
    grouped = [id(p) for group in method.parameter_groups(0.1) for p in group["params"]]
    assert len(grouped) == len(set(grouped)) and grouped
    assert set(grouped) <= {id(p) for p in method.parameters()}
    torch.optim.SGD(method.parameter_groups(0.1), lr=0.1)  # the optimiser accepts them


def test_method_state_round_trip(
    method_name: str, method: WSOLMethod, method_options: dict[str, dict[str, Any]]
) -> None:
    method.on_train_epoch_end(0)
    torch.manual_seed(1)
    fresh = build_method(method_name, NUM_CLASSES, method_options.get(method_name, {}))
    fresh.load_state_dict(method.state_dict(), strict=True)
    fresh.load_extra_state(method.extra_state_for_checkpoint())
    torch.testing.assert_close(fresh.extra_state_for_checkpoint(), method.extra_state_for_checkpoint())
    images = _batch()["image"]
    expected, actual = _predict(method, images), _predict(fresh, images)
    torch.testing.assert_close(actual.logits, expected.logits)
    torch.testing.assert_close(actual.maps, expected.maps)


def test_method_cam_source_feeds_post_hoc_cams(method: WSOLMethod, hook_count) -> None:
    if not isinstance(method, CAMSource):  # the capability is declared exactly where it exists
        assert not hasattr(method, "cam_model")
        return
    model, layer = method.cam_model()
    method.eval()
    images = _batch(2)["image"]
    hooks = hook_count(method)  # inserted layers (ADL, ASS, ...) may own hooks of their own
    with build_extractor("gradcam", model, layer) as extractor:
        maps = extractor(images, [0, 2], upsample_to="input")
    assert maps.shape == (2, SIDE, SIDE) and torch.isfinite(maps).all()
    assert hook_count(method) == hooks


# ------------------------------------------------------------------------------------------------- CAMs
@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    torch.manual_seed(0)
    return build_classifier("tiny", "wgap", NUM_CLASSES).eval()


@pytest.mark.parametrize("name", sorted(CAM_METHODS))
def test_cam_maps_and_hooks(name: str, classifier: nn.Module, hook_count) -> None:
    images = torch.randn(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(2))
    with build_extractor(name, classifier, "backbone", **CAM_OPTIONS.get(name, {})) as extractor:
        maps = extractor(images, [0, 2], upsample_to="input")
        assert extractor.last_logits is not None
    assert maps.shape == (2, SIDE, SIDE) and torch.isfinite(maps).all()
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    assert hook_count(classifier) == 0 and extractor.last_logits is None


@pytest.mark.parametrize("name", sorted(CAM_METHODS))
def test_cam_releases_hooks_when_a_call_fails(name: str, classifier: nn.Module, hook_count) -> None:
    with (
        pytest.raises((ValueError, IndexError, RuntimeError)),
        build_extractor(name, classifier, "backbone", **CAM_OPTIONS.get(name, {})) as extractor,
    ):
        extractor(torch.randn(2, 3, SIDE, SIDE), [0, NUM_CLASSES + 5])
    assert hook_count(classifier) == 0


# ------------------------------------------------------------------------------------------------- importers
@pytest.mark.parametrize("name", sorted(IMPORTERS))
def test_importer_identity(name: str) -> None:
    importer = IMPORTERS[name]
    assert importer.name == name
    assert isinstance(importer.citation, str) and importer.citation.strip()
    assert importer.__doc__ and importer.__doc__.strip()


@pytest.mark.parametrize("name", sorted(IMPORTERS))
def test_importer_rejects_an_empty_folder_clearly(name: str, tmp_path: Path) -> None:
    source, out = tmp_path / "empty", tmp_path / "out"
    source.mkdir()
    with pytest.raises(SourceLayoutError) as error:
        import_dataset(name, source, out)
    message = str(error.value)
    assert message.startswith(f"{name}: ") and str(source) in message and "expected" in message
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(IMPORTERS))
def test_importer_rejects_a_missing_folder(name: str, tmp_path: Path) -> None:
    with pytest.raises(SourceLayoutError, match=f"{name}: source folder .* does not exist"):
        IMPORTERS[name](tmp_path / "absent")
