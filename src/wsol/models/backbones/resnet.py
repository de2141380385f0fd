"""ResNet-18/34/50/101 (He et al., CVPR 2016) with torchvision's module layout and parameter names.

The stem is torchvision's (7×7 conv, BN, ReLU, 3×3 max-pool), not the CSAIL deep stem of the min-max entropy
reference code (sbelharbi/wsol-min-max-entropy-interpretability). Strides follow the WSOL convention of
removing the last strides instead of dilating (clovaai/wsolevaluation ``wsol/resnet.py``):

* ``output_stride=32`` (default): torchvision's network, layer4 at H/32.
* ``output_stride=16``: layer4 stride 1 — wsolevaluation's ``ResNetCam`` default (14×14 maps at 224 px).
* ``output_stride=8`` (= ``large_feature_map=True``): layer3 and layer4 stride 1 — wsolevaluation's
  ``--large_feature_map`` (28×28 at 224 px).

Removing a stride changes no parameter shape, so torchvision weights load for every stride.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn

from wsol.models.backbones.base import Backbone

_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or 1×1 projection) shortcut; stride on the first conv."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck; stride on the 3×3 conv (torchvision's "ResNet V1.5")."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def layer_strides(output_stride: int, name: str) -> tuple[int, int, int]:
    """Strides of layer2..layer4 for an output stride in {4, 8, 16, 32} (stem and max-pool give 4)."""
    if output_stride not in (4, 8, 16, 32):
        raise ValueError(f"{name}: output_stride must be 4, 8, 16 or 32, got {output_stride}")
    halvings = int(math.log2(output_stride // 4))
    return tuple(2 if index < halvings else 1 for index in range(3))  # type: ignore[return-value]


class ResNet(Backbone):
    """ResNet trunk without ``avgpool``/``fc``; ``stages(x)`` gives the maps encoder–decoders need."""

    dropped_prefixes = ("fc.",)
    high_lr_prefixes = ("layer4.",)

    def __init__(
        self,
        name: str,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        output_stride: int = 32,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        stem_width: int = 64,
        stem_kernel: int = 7,
        imagenet_url: str | None = None,
    ) -> None:
        strides = layer_strides(output_stride, name)
        super().__init__(name, widths[3] * block.expansion, output_stride)
        self.imagenet_url = imagenet_url
        self.conv1 = nn.Conv2d(3, stem_width, stem_kernel, stride=2, padding=stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._inplanes = stem_width
        self.layer1 = self._make_layer(block, widths[0], layers[0], 1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], strides[0])
        self.layer3 = self._make_layer(block, widths[2], layers[2], strides[1])
        self.layer4 = self._make_layer(block, widths[3], layers[3], strides[2])
        # wsolevaluation's ADL positions: after block 0 of layer3 and blocks 0 and 2 (the last) of layer4.
        self.insertion_points = tuple(dict.fromkeys(("layer3.0", "layer4.0", f"layer4.{layers[3] - 1}")))
        self.stage_channels = [stem_width, stem_width, *(width * block.expansion for width in widths)]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        modules = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        modules += [block(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def stages(self, x: Tensor) -> list[Tensor]:
        """[relu(bn1(conv1)) at H/2, maxpool at H/4, layer1, layer2, layer3, layer4], shallow to deep."""
        self.check_input(x)
        stem = self.relu(self.bn1(self.conv1(x)))
        outputs = [stem, self.maxpool(stem)]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            outputs.append(layer(outputs[-1]))
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resolve_output_stride(
    name: str, large_feature_map: bool, output_stride: int | None, *, default: int, large: int
) -> int:
    """``output_stride`` if given (it must agree with ``large_feature_map``), else large/default."""
    if output_stride is None:
        return large if large_feature_map else default
    if large_feature_map and output_stride != large:
        raise ValueError(
            f"{name}: large_feature_map=True means output_stride={large}; got output_stride={output_stride}"
        )
    return output_stride


def _factory(
    name: str, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int]
) -> Callable[..., ResNet]:
    def build(*, large_feature_map: bool = False, output_stride: int | None = None) -> ResNet:
        stride = resolve_output_stride(name, large_feature_map, output_stride, default=32, large=8)
        return ResNet(name, block, layers, output_stride=stride, imagenet_url=_URLS[name])

    build.__name__ = name
    build.__doc__ = f"torchvision's {name} trunk (see the module docstring for the strides)."
    return build


resnet18 = _factory("resnet18", BasicBlock, (2, 2, 2, 2))
resnet34 = _factory("resnet34", BasicBlock, (3, 4, 6, 3))
resnet50 = _factory("resnet50", Bottleneck, (3, 4, 6, 3))
resnet101 = _factory("resnet101", Bottleneck, (3, 4, 23, 3))
