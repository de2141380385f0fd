"""Hide-and-Seek (Singh & Lee, ICCV 2017, arXiv 1704.04232): hide random grid patches of the training images.

Each training image is cut into ``grid_size`` × ``grid_size`` pixel patches and every patch is hidden
independently with probability ``drop_rate``; a hidden patch is set to ``fill``. The paper fills with the
dataset's mean pixel so that hiding does not shift the statistics the first layers see; on normalised images
that mean is 0, the default (clovaai/wsolevaluation hides after normalisation too, grid 4, rate 0.5). The
paper draws the patch size per iteration from {0, 16, 32, 44, 56} (0 = no hiding): pass ``grid_sizes`` for
that. Evaluation sees the full image; the localization map is the head's class map, as in
:class:`~wsol.methods.cam_baseline.PoolingHeadMethod`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wsol.methods.base import Batch, LossOutput
from wsol.methods.cam_baseline import PoolingHeadMethod


def hide_patches(images: Tensor, keep: Tensor, grid_size: int, fill: float) -> Tensor:
    """``images`` (B,C,H,W) with patch (i, j) set to ``fill`` where ``keep[b, i, j]`` is False.

    ``keep`` is (B, ⌈H/g⌉, ⌈W/g⌉); the last row/column of patches may be cut by the image border.
    """
    height, width = images.shape[-2:]
    pixels = keep.repeat_interleave(grid_size, dim=1).repeat_interleave(grid_size, dim=2)
    pixels = pixels[:, None, :height, :width]
    return torch.where(pixels, images, torch.full_like(images, fill))


class HideAndSeek(PoolingHeadMethod):
    """A pooling-head classifier trained on images with randomly hidden patches."""

    def __init__(
        self,
        num_classes: int,
        grid_size: int = 4,
        drop_rate: float = 0.5,
        grid_sizes: Sequence[int] | None = None,
        fill: float = 0.0,
        **classifier: Any,
    ) -> None:
        super().__init__(num_classes, **classifier)
        sizes = tuple(grid_sizes) if grid_sizes else (grid_size,)
        if any(int(size) != size or size < 0 for size in sizes):
            raise ValueError(f"grid_size(s): expected non-negative integers, got {sizes}")
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"drop_rate: expected a probability in [0, 1], got {drop_rate}")
        self.grid_sizes = tuple(int(size) for size in sizes)
        self.drop_rate = drop_rate
        self.fill = fill

    def hide(self, images: Tensor) -> Tensor:
        """Draw the patch size (one per batch) and the hidden patches (one coin per patch and image)."""
        grid = self.grid_sizes[int(torch.randint(len(self.grid_sizes), ()))]
        if grid == 0:
            return images
        rows, cols = -(-images.shape[-2] // grid), -(-images.shape[-1] // grid)
        keep = torch.rand(images.shape[0], rows, cols, device=images.device) >= self.drop_rate
        return hide_patches(images, keep, grid, self.fill)

    def training_loss(self, batch: Batch) -> LossOutput:
        logits = self(self.hide(batch["image"])).logits
        loss = F.cross_entropy(logits, batch["label"])
        return LossOutput(total=loss, terms={"ce": loss.detach()})
