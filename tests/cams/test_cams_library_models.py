"""The extractors on the classifiers this library trains (``wsol.models``: backbone + pooling head)."""

from __future__ import annotations

import pytest
import torch

from wsol.cams import build_extractor
from wsol.models import HEADS, build_classifier


@pytest.mark.parametrize("head", sorted(HEADS))
def test_gradcam_on_every_head(head: str) -> None:
    model = build_classifier("tiny", head, 3).eval()
    x = torch.randn(2, 3, 32, 32)
    with build_extractor("gradcam", model, model.backbone) as extractor:
        maps = extractor(x, [0, 2], upsample_to="input")
        logits = extractor.last_logits
    assert maps.shape == (2, 32, 32)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    torch.testing.assert_close(logits, model(x).logits)


@pytest.mark.parametrize("head", ["gap", "wgap"])
def test_cam_is_the_heads_own_class_map(head: str) -> None:
    """GAP head: Conv1x1 class maps (CAM + bias); WGAP head: W_fc · F without bias (CAM exactly)."""
    model = build_classifier("tiny", head, 3).eval()
    x = torch.randn(2, 3, 32, 32)
    with build_extractor("cam", model, "backbone") as extractor:
        maps = extractor(x, [1, 2], relu=False, normalize=None)
    with torch.no_grad():
        class_maps = model(x).class_maps[[0, 1], [1, 2]]
        if head == "gap":
            class_maps = class_maps - model.head.classifier.bias[[1, 2]][:, None, None]
    torch.testing.assert_close(maps, class_maps, rtol=1e-5, atol=1e-6)


def test_cam_refuses_heads_without_one_row_per_class() -> None:
    model = build_classifier("tiny", "wildcat", 3).eval()
    with (
        build_extractor("cam", model, "backbone") as extractor,
        pytest.raises(ValueError, match="one row per class"),
    ):
        extractor(torch.randn(1, 3, 32, 32), 0)
