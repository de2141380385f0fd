"""Fully supervised U-Net: decoder over any backbone's stages, BCE on masked pixels only, probability maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wsol.methods import build_method
from wsol.methods.unet_fullsup import UNetFullSup


def _batch() -> dict:
    mask = torch.zeros(3, 1, 32, 32)
    mask[:, :, 8:20, 10:24] = 1.0
    ignore = torch.zeros(3, 1, 32, 32, dtype=torch.bool)
    ignore[0, :, :4] = True
    return {
        "image": torch.randn(3, 3, 32, 32),
        "label": torch.tensor([0, 1, 2]),
        "mask": mask,
        "ignore": ignore,
        "has_mask": torch.tensor([True, True, False]),
    }


@pytest.mark.parametrize("backbone", ["tiny", "resnet18"])
def test_maps_are_input_sized_probabilities(backbone: str) -> None:
    method = build_method("unet_fullsup", 3, {"backbone": backbone}).eval()
    assert isinstance(method, UNetFullSup) and len(method.blocks) == 5  # six stages, five skips
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        prediction = method.predict(images)
        logits, foreground = method(images)
    assert prediction.maps.shape == (2, 64, 64) and prediction.logits.shape == (2, 3)
    torch.testing.assert_close(prediction.maps, torch.sigmoid(foreground))


def test_loss_uses_only_masked_and_not_ignored_pixels() -> None:
    method = build_method("unet_fullsup", 3, {"backbone": "tiny", "classification_weight": 0.5}).eval()
    batch = _batch()
    loss = method.training_loss(batch)
    logits, foreground = method(batch["image"])
    valid = torch.ones(3, 32, 32, dtype=torch.bool)
    valid[0, :4] = False
    valid[2] = False
    bce = F.binary_cross_entropy_with_logits(foreground[valid], batch["mask"][:, 0][valid])
    torch.testing.assert_close(loss.total, bce + 0.5 * F.cross_entropy(logits, batch["label"]))
    changed = dict(batch, mask=batch["mask"].clone())
    changed["mask"][0, :, :4] = 1.0  # ignored rows
    changed["mask"][2] = 1.0  # image without a mask
    torch.testing.assert_close(method.training_loss(changed).total, loss.total)


def test_backbone_without_stages_is_rejected() -> None:
    with torch.device("meta"), pytest.raises(ValueError, match="no stages"):
        build_method("unet_fullsup", 3, {"backbone": "vgg16"})


def test_decoder_and_heads_learn_at_the_new_layers_rate() -> None:
    method = build_method("unet_fullsup", 3, {"backbone": "tiny", "new_layers_lr_mult": 10.0})
    groups = method.parameter_groups(0.01)
    by_id = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert len(by_id) == sum(1 for p in method.parameters() if p.requires_grad)  # each once
    new_layers = [*method.blocks.parameters(), *method.segmentation.parameters(), *method.head.parameters()]
    assert {by_id[id(p)] for p in new_layers} == {0.1}
    base, high = method.backbone.split_parameters()
    assert {by_id[id(p)] for p in base} == {0.01} and {by_id[id(p)] for p in high} <= {0.1}
    with pytest.raises(ValueError, match="new_layers_lr_mult"):
        build_method("unet_fullsup", 3, {"backbone": "tiny", "new_layers_lr_mult": 0})
