"""Hide-and-Seek: the hidden-patch pattern, the fill value, the drop rate, and full images at evaluation."""

from __future__ import annotations

import pytest
import torch

from wsol.methods import build_method
from wsol.methods.has import HideAndSeek, hide_patches


def test_hide_patches_hand_built_pattern_with_a_cut_border_patch() -> None:
    images = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5) + 1
    keep = torch.tensor([[[True, False, True], [False, True, True], [True, True, False]]])
    out = hide_patches(images, keep, grid_size=2, fill=-7.0)
    hidden = torch.zeros(5, 5, dtype=torch.bool)
    hidden[0:2, 2:4] = True  # patch (0, 1)
    hidden[2:4, 0:2] = True  # patch (1, 0)
    hidden[4:5, 4:5] = True  # patch (2, 2), cut to one pixel by the border
    for channel in range(2):
        assert torch.equal(out[0, channel][hidden], torch.full((int(hidden.sum()),), -7.0))
        assert torch.equal(out[0, channel][~hidden], images[0, channel][~hidden])


def test_hide_draws_whole_patches_at_the_drop_rate_and_fills_with_the_normalised_mean() -> None:
    method = build_method("has", 3, {"backbone": "tiny", "grid_size": 4, "drop_rate": 0.3})
    assert isinstance(method, HideAndSeek)
    images = torch.rand(64, 3, 32, 32) + 1.0  # never 0, so hidden pixels are recognisable
    out = method.hide(images)
    hidden = out == 0.0  # default fill 0 = the dataset mean after normalisation
    assert torch.equal(hidden, hidden[:, :1].expand_as(hidden))  # every channel hidden alike
    blocks = hidden[:, 0].reshape(64, 8, 4, 8, 4).float()
    per_patch = blocks.mean(dim=(2, 4))
    assert torch.all((per_patch == 0) | (per_patch == 1))  # patches are hidden whole
    assert abs(per_patch.mean().item() - 0.3) < 0.03  # 4096 patches: sd of the rate is 0.007
    assert torch.equal(out[~hidden], images[~hidden])


def test_grid_size_is_drawn_per_batch_and_zero_means_no_hiding() -> None:
    method = build_method("has", 3, {"backbone": "tiny", "grid_sizes": [0, 8], "drop_rate": 1.0})
    images = torch.ones(2, 3, 16, 16)
    outcomes = {bool((method.hide(images) == 0).all()) for _ in range(40)}
    assert outcomes == {True, False}  # drop rate 1: grid 8 hides everything, grid 0 nothing


def test_training_loss_sees_hidden_images_and_prediction_the_full_ones(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    method = build_method("has", 3, {"backbone": "tiny", "grid_size": 8, "drop_rate": 1.0})
    seen: list[torch.Tensor] = []
    monkeypatch.setattr(
        method.classifier,
        "forward",
        lambda x: seen.append(x) or method.classifier.head(method.classifier.backbone(x)),
    )
    batch = {"image": torch.randn(2, 3, 16, 16), "label": torch.tensor([0, 2])}
    method.training_loss(batch)
    assert torch.equal(seen[-1], torch.zeros(2, 3, 16, 16))
    method.eval()
    method.predict(batch["image"])
    assert torch.equal(seen[-1], batch["image"])


@pytest.mark.parametrize("options", [{"drop_rate": 1.5}, {"grid_size": -1}, {"grid_sizes": [4, 2.5]}])
def test_bad_options_are_rejected(options: dict) -> None:
    with pytest.raises(ValueError, match="drop_rate|grid_size"):
        build_method("has", 3, {"backbone": "tiny", **options})
