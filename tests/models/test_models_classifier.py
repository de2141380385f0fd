"""WSOLClassifier: CAMs for any class, wsolevaluation's parameter groups, training through the maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wsol.models import WSOLClassifier, build_backbone, build_classifier, build_head, select_class_maps


def test_cam_selects_each_image_s_class_map() -> None:
    torch.manual_seed(0)
    model = build_classifier("tiny", "gap", 3).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        output = model(x)
        cams = model.cam(x, torch.tensor([2, 0]))
    assert output.logits.shape == (2, 3) and output.class_maps.shape == (2, 3, 4, 4)
    assert torch.equal(cams[0], output.class_maps[0, 2]) and torch.equal(cams[1], output.class_maps[1, 0])
    assert torch.equal(model.cam(x, [1, 1]), output.class_maps[:, 1])


def test_wgap_classifier_cam_is_fc_weights_times_layer4() -> None:
    torch.manual_seed(0)
    model = build_classifier("resnet18", "wgap", 4).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model.backbone(x)
        expected = (model.head.fc.weight[3].view(-1, 1, 1) * features[0]).sum(0)
        assert torch.allclose(model.cam(x, [3])[0], expected, atol=1e-4)


def test_bad_classes_and_mismatched_parts_are_rejected() -> None:
    maps = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="expected 2 integer class indices"):
        select_class_maps(maps, [0])
    with pytest.raises(ValueError, match=r"indices must be in \[0, 3\)"):
        select_class_maps(maps, [0, 3])
    with pytest.raises(ValueError, match="head expects 32 input channels but backbone tiny gives 64"):
        WSOLClassifier(build_backbone("tiny"), build_head("gap", 32, 2))


def test_parameter_groups_follow_wsolevaluation() -> None:
    model = build_classifier("resnet18", "wgap", 5)
    base, high = model.parameter_groups(0.01)
    assert base["lr"] == 0.01 and high["lr"] == pytest.approx(0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(not names[id(p)].startswith(("backbone.layer4.", "head.")) for p in base["params"])
    assert {names[id(p)].split(".")[1] for p in high["params"]} == {"layer4", "fc"}
    assert len(base["params"]) + len(high["params"]) == len(list(model.parameters()))
    vgg_groups = WSOLClassifier(build_backbone("vgg16"), build_head("gap", 1024, 2)).parameter_groups(1.0, 5)
    assert [len(group["params"]) for group in vgg_groups] == [26, 4]  # features | conv6 + head conv
    frozen = build_classifier("tiny", "gap", 2)
    frozen.backbone.requires_grad_(False)
    assert [group["lr"] for group in frozen.parameter_groups(0.1)] == [pytest.approx(1.0)]


@pytest.mark.parametrize("head", ["gap", "max", "lse", "wildcat", "mil", "wgap", "prm"])
def test_a_few_training_steps_fit_a_tiny_batch(head: str) -> None:
    torch.manual_seed(0)
    model = build_classifier("tiny", head, 2)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 1, 0, 1])
    optimizer = torch.optim.SGD(model.parameter_groups(0.05, 1.0), momentum=0.9)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).logits, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_same_seed_same_numbers() -> None:
    outputs = []
    for _ in range(2):
        torch.manual_seed(11)
        model = build_classifier("tiny", "wildcat", 3, head_options={"dropout": 0.5})
        outputs.append(model(torch.ones(2, 3, 32, 32)).logits)
    assert torch.equal(outputs[0], outputs[1])
