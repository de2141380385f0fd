"""Every method and post-hoc CAM accepts the EfficientNet-Lite backbones as well as the ResNet-like ``tiny``.

Random initialisation (no weights needed), tiny images: one training step must back-propagate into the
backbone, and predictions must have the documented shapes and ranges.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from wsol.cams import CAM_METHODS, build_extractor
from wsol.methods import build_method
from wsol.methods.base import WSOLMethod
from wsol.methods.weight_map_generator import build_generator
from wsol.models import HEADS, build_backbone, build_classifier

BACKBONES = ("tiny", "efficientnet_lite0")
SIDE = 32
# Channel-wise extractors run one forward per feature channel (1280 for Lite): few samples suffice here.
CAM_OPTIONS: dict[str, dict[str, object]] = {
    "smoothgradcampp": {"num_samples": 2},
    "sscam": {"num_samples": 1},
    "iscam": {"num_samples": 2},
    "scorecam": {"batch_size": 256},
    "ablationcam": {"batch_size": 256},
}
# Ablation-CAM re-runs the layers after its target once per channel: on Lite, target the last block (320
# channels) instead of the 1280-channel head conv to keep the test short.
TARGETS = {("ablationcam", "efficientnet_lite0"): "backbone.blocks"}


def _batch(size: int = 4) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {"image": torch.randn(size, 3, SIDE, SIDE, generator=generator), "label": torch.arange(size) % 3}


def _step_moves_the_backbone(method: WSOLMethod, backbone: torch.nn.Module) -> None:
    method.train()
    first = next(p for p in backbone.parameters() if p.requires_grad)
    before = first.detach().clone()
    groups = method.parameter_groups(0.1)
    optimizer = torch.optim.SGD(groups, lr=0.1)
    optimizer.zero_grad()
    terms = method.training_step(_batch(), lambda loss: loss.backward())
    assert torch.isfinite(torch.as_tensor(terms["loss"]))
    optimizer.step()
    assert not torch.equal(first.detach(), before)


def _check_prediction(method: WSOLMethod) -> None:
    method.eval()
    with torch.no_grad():
        prediction = method.predict(_batch(2)["image"])
    assert prediction.logits.shape == (2, 3) and prediction.maps.shape == (2, SIDE, SIDE)
    assert float(prediction.maps.min()) >= 0 and float(prediction.maps.max()) <= 1


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("head", sorted(HEADS))
def test_cam_heads(backbone: str, head: str) -> None:
    method = build_method("cam", 3, {"backbone": backbone, "head": head})
    _step_moves_the_backbone(method, method.classifier.backbone)
    _check_prediction(method)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_minmax_entropy(backbone: str) -> None:
    wildcat = {"kmax": 0.3, "modalities": 2}
    options = {"backbone": {"name": backbone}, "wildcat": wildcat, "erasing": {"depth": 1}}
    method = build_method("minmax_entropy", 3, options)
    _step_moves_the_backbone(method, method.backbone)
    _check_prediction(method)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_weight_map_generator_and_method(backbone: str, tmp_path: Path) -> None:
    generator = build_generator(backbone)
    assert generator(torch.randn(1, 3, 40, 56)).shape == (1, 40, 56)
    weights = tmp_path / "f.pth"
    torch.save(build_classifier(backbone, "wgap", 3).state_dict(), weights)
    options = {"encoder": backbone, "classifier": {"weights": str(weights), "backbone": backbone}}
    method = build_method("weight_map", 3, options)
    _step_moves_the_backbone(method, method.generator.encoder)
    _check_prediction(method)
    siamese = build_method(
        "weight_map", 3, {"method": "II", "phase": "pretrain_siamese", "siamese": {"backbone": backbone}}
    )
    _step_moves_the_backbone(siamese, siamese.siamese.backbone)


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("name", sorted(CAM_METHODS))
def test_post_hoc_cams(backbone: str, name: str) -> None:
    model = build_classifier(backbone, "wgap", 3).eval()
    x = torch.randn(1, 3, SIDE, SIDE)
    target = TARGETS.get((name, backbone), "backbone")
    with build_extractor(name, model, target, **CAM_OPTIONS.get(name, {})) as extractor:
        maps = extractor(x, [2], upsample_to="input")
    assert maps.shape == (1, SIDE, SIDE) and torch.isfinite(maps).all()
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_lite_stride_16_gives_the_larger_map_to_every_head() -> None:
    net = build_backbone("efficientnet_lite0", large_feature_map=True)
    model = build_classifier("efficientnet_lite0", "wildcat", 3, large_feature_map=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).class_maps.shape[-2:] == (4, 4)
    assert net.stride == 16
