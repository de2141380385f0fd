"""``tiny``: a ResNet-10-like backbone for CPU training on the 64–128 px synthetic benchmark.

torchvision's ResNet structure (:class:`~wsol.models.backbones.resnet.ResNet`: same ``stages`` and parameter
naming) with a 3×3 stem, one BasicBlock per layer and widths 16/24/32/64 (stem 16). Output stride 8 by default
(12×12 maps at 96 px), 4 with ``large_feature_map``. No pretrained weights exist: it trains from scratch.
The widths were chosen for speed: about 500 training images/s at 96 px, batch 32, on one CPU core
(``benchmarks/bench_backbones.py``).
"""

from __future__ import annotations

from wsol.models.backbones.resnet import BasicBlock, ResNet, resolve_output_stride

TINY_WIDTHS = (16, 24, 32, 64)
TINY_STEM_WIDTH = 16


def tiny(*, large_feature_map: bool = False, output_stride: int | None = None) -> ResNet:
    """The small CPU backbone: stride 8, 4 with ``large_feature_map``, or ``output_stride`` (4/8/16/32)."""
    stride = resolve_output_stride("tiny", large_feature_map, output_stride, default=8, large=4)
    backbone = ResNet(
        "tiny",
        BasicBlock,
        (1, 1, 1, 1),
        output_stride=stride,
        widths=TINY_WIDTHS,
        stem_width=TINY_STEM_WIDTH,
        stem_kernel=3,
    )
    # Trained from scratch: no pretrained part to keep at a lower learning rate.
    backbone.high_lr_prefixes = ()
    return backbone
