"""VGG16, the WSOL "GAP" variant of clovaai/wsolevaluation (``wsol/vgg.py``, ``VggCam``).

torchvision's ``features`` (13 conv + ReLU, Simonyan & Zisserman 2015) without the last max-pool, then
``conv6`` (3×3, 512 → 1024) + ReLU; no fully connected layers. Stride 16 (14×14 at 224 px).
``large_feature_map=True`` also removes the 4th max-pool (stride 8, 28×28 at 224 px). That pool is replaced
by an identity at the same index, so torchvision's ``features.<i>`` keys keep their indices (wsolevaluation
instead rebuilds the sequence and renumbers the checkpoint's keys on load).
"""

from __future__ import annotations

from torch import Tensor, nn

from wsol.models.backbones.base import Backbone

_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
# torchvision's configuration "D"; "M" = 2×2 max-pool. The final "M" (features.30) is dropped by the GAP
# variant.
_CONFIG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
)
_FOURTH_POOL_INDEX = 23


class VGG16(Backbone):
    """``features`` (torchvision indices 0–29) → ``conv6`` → ReLU."""

    imagenet_url = _URL
    dropped_prefixes = ("classifier.",)
    new_layer_prefixes = ("conv6.",)
    high_lr_prefixes = ("conv6.",)
    insertion_points = ("features.16", "features.22", "features.29")  # after pool3, conv4_3, conv5_3 (ADL)

    def __init__(self, *, large_feature_map: bool = False) -> None:
        super().__init__("vgg16", 1024, 8 if large_feature_map else 16)
        layers: list[nn.Module] = []
        in_channels = 3
        for value in _CONFIG:
            if value == "M":
                pool = len(layers) == _FOURTH_POOL_INDEX and large_feature_map
                layers.append(nn.Identity() if pool else nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, int(value), 3, padding=1), nn.ReLU(inplace=True)]
                in_channels = int(value)
        self.features = nn.Sequential(*layers)
        self.conv6 = nn.Conv2d(512, 1024, 3, padding=1)
        self.relu = nn.ReLU(inplace=False)  # as wsolevaluation: conv6's output stays intact for hooks
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.relu(self.conv6(self.features(x)))


def vgg16(*, large_feature_map: bool = False) -> VGG16:
    """VGG16 GAP variant (stride 16; 8 with ``large_feature_map``)."""
    return VGG16(large_feature_map=large_feature_map)
