"""Methods for the engine tests, used as ``method.name=engine_test_methods:Class`` (on PYTHONPATH)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Backward, Batch
from wsol.methods.cam_baseline import PoolingHeadMethod


class FrozenBatchNormCAM(PoolingHeadMethod):
    """CAM-Avg whose BatchNorm layers always use their running statistics, back-propagating once per class.

    Batch statistics differ between a batch of 8 and two DDP shards of 4, so the DDP-equivalence test needs a
    network whose forward pass does not depend on how a batch is split. One backward pass per class present in
    the batch (summing to the mean cross-entropy) makes the number of backward passes differ between ranks, as
    recursive erasing does.
    """

    def __init__(self, num_classes: int, **options: Any) -> None:
        super().__init__(num_classes, **options)
        self.train()

    def train(self, mode: bool = True) -> FrozenBatchNormCAM:
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def training_step(self, batch: Batch, backward: Backward) -> dict[str, Tensor]:
        images, labels = batch["image"], batch["label"]
        total = images.new_zeros(())
        for label in labels.unique():
            selected = labels == label
            logits = self(images[selected]).logits
            loss = F.cross_entropy(logits, labels[selected], reduction="sum") / labels.numel()
            backward(loss)
            total = total + loss.detach()
        return {"loss": total}
