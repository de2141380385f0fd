"""CutMix (Yun et al., ICCV 2019, arXiv 1905.04899): paste a box of another training image, mix the labels.

With probability ``prob`` per batch: λ ~ Beta(β, β); each image is paired with image ``perm[b]`` of a random
permutation of the batch; a box of size (H·√(1−λ), W·√(1−λ)) (truncated to whole pixels) centred on a uniform
pixel and clipped to the image is filled with the partner's pixels; λ is recomputed as the uncovered fraction
``1 − box area / image area`` and the loss is ``λ·CE(y) + (1 − λ)·CE(y_perm)`` (paper Eq. 1–2; the same box
for the whole batch, as in the authors' and clovaai/wsolevaluation's code; defaults β = 1, prob = 1).
Evaluation sees plain images; the map is the head's class map (as ``PoolingHeadMethod``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wsol.methods.base import Batch, LossOutput
from wsol.methods.cam_baseline import PoolingHeadMethod


@dataclass(frozen=True)
class CutBox:
    """Rows ``y0:y1``, columns ``x0:x1`` of the pasted box; λ = label weight of the pasted-on image."""

    y0: int
    y1: int
    x0: int
    x1: int
    lam: float


def cut_box(lam: float, height: int, width: int, center_y: int, center_x: int) -> CutBox:
    """The CutMix box for a drawn ``lam`` and centre, clipped to the image; λ recomputed from its area."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    y0, y1 = max(center_y - cut_h // 2, 0), min(center_y + cut_h // 2, height)
    x0, x1 = max(center_x - cut_w // 2, 0), min(center_x + cut_w // 2, width)
    return CutBox(y0, y1, x0, x1, 1.0 - (y1 - y0) * (x1 - x0) / (height * width))


class CutMix(PoolingHeadMethod):
    """A pooling-head classifier trained on CutMix batches with the mixed cross-entropy."""

    def __init__(self, num_classes: int, beta: float = 1.0, prob: float = 1.0, **classifier: Any) -> None:
        super().__init__(num_classes, **classifier)
        if beta <= 0:
            raise ValueError(f"beta: expected a positive Beta parameter, got {beta}")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob: expected a probability in [0, 1], got {prob}")
        self.beta = beta
        self.prob = prob

    def mix(self, images: Tensor) -> tuple[Tensor, Tensor, CutBox]:
        """``(mixed images, partner permutation, box)``; an unmixed batch gets the empty box, λ = 1."""
        batch, _, height, width = images.shape
        perm = torch.randperm(batch, device=images.device)
        if float(torch.rand(())) >= self.prob:
            return images, perm, CutBox(0, 0, 0, 0, 1.0)
        lam = float(torch.distributions.Beta(self.beta, self.beta).sample())
        box = cut_box(lam, height, width, int(torch.randint(height, ())), int(torch.randint(width, ())))
        mixed = images.clone()
        mixed[:, :, box.y0 : box.y1, box.x0 : box.x1] = images[perm, :, box.y0 : box.y1, box.x0 : box.x1]
        return mixed, perm, box

    def training_loss(self, batch: Batch) -> LossOutput:
        labels = batch["label"]
        images, perm, box = self.mix(batch["image"])
        logits = self(images).logits
        loss = box.lam * F.cross_entropy(logits, labels) + (1.0 - box.lam) * F.cross_entropy(
            logits, labels[perm]
        )
        return LossOutput(total=loss, terms={"ce": loss.detach(), "lam": torch.tensor(box.lam)})
