"""The thesis' weighted GAP head: Eq. 18-19 on a hand-built feature map, and the Eq. 16 class map."""

from __future__ import annotations

import math

import torch

from wsol.models import build_head


def test_pooling_weights_each_channel_by_its_spatial_softmax() -> None:
    head = build_head("softmax_wgap", 2, 3)
    features = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    e = [math.exp(v) for v in (0.0, 1.0, 2.0, 3.0)]
    pooled0 = sum(v * w for v, w in zip((0.0, 1.0, 2.0, 3.0), e, strict=True)) / sum(e) / 4
    pooled1 = 1.0 * 0.25 / 1  # uniform softmax 1/4 on four ones, summed, / (w·h) = 0.25
    expected = head.fc(torch.tensor([[pooled0, pooled1]]))
    output = head(features)
    torch.testing.assert_close(output.logits, expected)
    torch.testing.assert_close(output.class_maps, torch.einsum("kc,bchw->bkhw", head.fc.weight, features))
