"""CAM-family baselines: a backbone + a pooling head trained with cross-entropy on image labels.

Heads (``wsol.models.build_head``): ``gap`` (CAM-Avg), ``max`` (CAM-Max), ``lse`` (CAM-LSE, Pinheiro &
Collobert 2015), ``wildcat`` (Durand et al. 2017), ``mil`` (Deep MIL attention, Ilse et al. 2018) and ``wgap``
(GAP + linear, classic CAM of Zhou et al. 2016). These are the baselines of the min-max entropy papers
(Table I of the TMI 2022 paper, arXiv 2011.07221). The localization map is the head's class map of the
requested (or predicted) class, upsampled bilinearly (``align_corners=False``) to the input size and
min-max normalised per image (a constant map becomes all zeros, as wsolevaluation's ``normalize_scoremap``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod
from wsol.models import HeadOutput, WSOLClassifier, build_classifier, select_class_maps
from wsol.normalize import minmax_normalize


class PoolingHeadMethod(WSOLMethod):
    """Backbone + pooling head (``wsol.models.WSOLClassifier``), trained with CE on the image label.

    ``new_layers_lr_mult`` multiplies the learning rate of the head (and of ResNets' ``layer4``):
    wsolevaluation uses 10 with an ImageNet-pretrained backbone (Choe et al., arXiv 2001.07437); 1 (the
    default) suits training from scratch.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tiny",
        head: str = "gap",
        head_options: Mapping[str, Any] | None = None,
        backbone_options: Mapping[str, Any] | None = None,
        large_feature_map: bool = False,
        weights: str | None = None,
        new_layers_lr_mult: float = 1.0,
    ) -> None:
        super().__init__(num_classes)
        if new_layers_lr_mult <= 0:
            raise ValueError(f"new_layers_lr_mult: expected a positive number, got {new_layers_lr_mult}")
        self.classifier = build_classifier(
            backbone,
            head,
            num_classes,
            large_feature_map=large_feature_map,
            weights=weights,
            backbone_options=dict(backbone_options or {}),
            head_options=dict(head_options or {}),
        )
        self.new_layers_lr_mult = new_layers_lr_mult

    @classmethod
    def from_classifier(
        cls, classifier: WSOLClassifier, new_layers_lr_mult: float = 1.0
    ) -> PoolingHeadMethod:
        """The method around a built classifier (e.g. ``wsol.models.imagenet.imagenet_classifier``)."""
        method = cls(
            classifier.num_classes, backbone="tiny", head="gap", new_layers_lr_mult=new_layers_lr_mult
        )
        method.classifier = classifier
        return method

    def forward(self, images: Tensor) -> HeadOutput:
        """The head's ``HeadOutput(logits, class_maps)``."""
        return self.classifier(images)

    def cam_model(self) -> tuple[nn.Module, nn.Module]:
        """``(model, target_layer)`` for ``wsol.cams``: the classifier and its backbone's last feature map."""
        return self.classifier, self.classifier.backbone

    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        output = self(images)
        logits = output.logits
        chosen = logits.argmax(dim=1) if classes is None else classes.to(logits.device)
        maps = select_class_maps(output.class_maps, chosen)
        maps = F.interpolate(maps[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[
            :, 0
        ]
        return Prediction(logits=logits, maps=minmax_normalize(maps))

    def training_loss(self, batch: Batch) -> LossOutput:
        logits = self(batch["image"]).logits
        loss = F.cross_entropy(logits, batch["label"])
        return LossOutput(total=loss, terms={"ce": loss.detach()})

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        return self.classifier.parameter_groups(lr, new_layers_lr_mult=self.new_layers_lr_mult)
