"""Methods used by the engine tests through ``method.name=engine_test_methods:Class`` (PYTHONPATH = this folder)."""

from __future__ import annotations

from typing import Any

from torch import nn

from wsol.methods.cam_baseline import PoolingHeadMethod


class FrozenBatchNormCAM(PoolingHeadMethod):
    """CAM-Avg whose BatchNorm layers always use their running statistics.

    Batch statistics differ between a batch of 8 and two DDP shards of 4, so the DDP-equivalence test needs a
    network whose forward pass does not depend on how a batch is split.
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
