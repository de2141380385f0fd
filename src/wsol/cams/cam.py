"""CAM (Zhou et al., CVPR 2016, Eq. 2): M_c = Σ_k W_fc[c, k] A_k, from the final classifier's weights.

Needs a network whose classifier is one linear map on the globally pooled target layer: an ``nn.Linear``
(GAP + Linear, e.g. the ``wgap`` head) or a 1×1 ``nn.Conv2d`` (a class-map head followed by pooling, e.g. the
``gap`` head). The layer is given (``fc_layer``: module or dotted name) or found as the last ``nn.Linear`` /
1×1 ``nn.Conv2d`` whose input width equals the target layer's channel count. For a 1×1-conv pooling head, CAM
equals the head's own class maps minus the bias (a per-class constant): those class maps *are* the CAM.
No ReLU by default (torch-cam, wsolevaluation); wsolevaluation averages over k instead of summing, a 1/K
factor that min-max normalisation removes. Targets must be class indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from wsol.cams.base import ActivationWeightedCAM, CAMContext, LayerSpec, resolve_layers


class CAM(ActivationWeightedCAM):
    """Class activation mapping from the classifier's weights (no gradient, one forward pass)."""

    default_relu = False

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        fc_layer: nn.Module | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, target_layer, **kwargs)
        self.fc_layer = resolve_layers(model, fc_layer)[0][1] if fc_layer is not None else None

    def classifier_weight(self, channels: int) -> Tensor:
        """Weight (num_classes, channels) of the classifier that reads a ``channels``-wide pooled map."""
        layer = self.fc_layer or find_classifier(self.model, channels)
        weight = classifier_matrix(layer)
        if weight.shape[1] != channels:
            raise ValueError(
                f"fc_layer: {type(layer).__name__} takes {weight.shape[1]} inputs but the target layer has "
                f"{channels} channels"
            )
        return weight

    def transform_weights(self, weight: Tensor) -> Tensor:
        """Hook for variants that recombine the classifier weights (identity for CAM)."""
        return weight

    def channel_weights(self, context: CAMContext, layer: int) -> Tensor:
        classes = context.targets.classes
        if classes is None:
            raise ValueError(f"{type(self).__name__} needs class-index targets, not callables")
        weight = self.transform_weights(self.classifier_weight(context.activations[layer].shape[1]))
        if context.outputs.ndim == 2 and weight.shape[0] != context.outputs.shape[1]:
            raise ValueError(
                f"fc_layer: the classifier has {weight.shape[0]} rows but the model gives "
                f"{context.outputs.shape[1]} logits; CAM needs one row per class (a GAP + linear or 1x1-conv "
                "head); use the head's own class maps or a gradient method"
            )
        return weight[classes]


def classifier_matrix(layer: nn.Module) -> Tensor:
    """(num_classes, channels) weight of an ``nn.Linear`` or 1×1 ``nn.Conv2d``."""
    if isinstance(layer, nn.Linear):
        return layer.weight
    if isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1) and layer.groups == 1:
        return layer.weight.flatten(1)
    raise ValueError(f"fc_layer: expected an nn.Linear or a 1x1 nn.Conv2d, got {type(layer).__name__}")


def find_classifier(model: nn.Module, channels: int) -> nn.Module:
    """The last ``nn.Linear`` / 1×1 ``nn.Conv2d`` of ``model`` that takes ``channels`` inputs."""
    found = None
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.in_features == channels:
            found = module
        elif (
            isinstance(module, nn.Conv2d)
            and module.kernel_size == (1, 1)
            and module.groups == 1
            and module.in_channels == channels
        ):
            found = module
    if found is None:
        raise ValueError(
            f"no nn.Linear or 1x1 nn.Conv2d of {type(model).__name__} takes {channels} inputs (the target "
            "layer's channels); pass fc_layer="
        )
    return found
