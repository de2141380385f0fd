"""Triplets for method II of Shaharabany & Wolf (arXiv 2111.14131, Eq. 2-4): anchor, same-class positive,
other-class negative.

The authors' loader draws, for each anchor, a uniformly random image of the
same class and one of a different class. Here the draw is made inside a batch (:func:`sample_triplets`), so
that the engine's ordinary loaders and collate work unchanged; :class:`ClassBalancedBatchSampler` builds
batches of ``images_per_class`` images from each of several classes so that every anchor of such a batch has a
positive and a negative.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Sampler


@dataclass(frozen=True)
class Triplets:
    """Batch indices (T,) of anchors, positives (same label, other image) and negatives (other label)."""

    anchor: Tensor
    positive: Tensor
    negative: Tensor

    def __len__(self) -> int:
        return int(self.anchor.numel())


def sample_triplets(labels: Tensor, generator: torch.Generator | None = None) -> Triplets:
    """One triplet per batch element that has both a same-class partner and an other-class image in the batch.

    Positives and negatives are drawn uniformly among the eligible batch elements (the authors' rule,
    restricted to the batch). Elements without a partner of their class (or batches of one class) are not
    anchors.
    """
    if labels.ndim != 1:
        raise ValueError(f"labels: expected a 1-D tensor of class indices, got shape {tuple(labels.shape)}")
    labels = labels.detach().to("cpu")
    same = labels[:, None] == labels[None, :]
    positive_pool = same & ~torch.eye(labels.numel(), dtype=torch.bool)
    negative_pool = ~same
    anchors = torch.nonzero(positive_pool.any(1) & negative_pool.any(1)).flatten()
    if anchors.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return Triplets(empty, empty, empty)
    positives = torch.multinomial(positive_pool[anchors].float(), 1, generator=generator).flatten()
    negatives = torch.multinomial(negative_pool[anchors].float(), 1, generator=generator).flatten()
    return Triplets(anchors, positives, negatives)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0) -> Tensor:
    """``mean(max(||a - p|| - ||a - n|| + margin, 0))`` over the rows: Eq. 2 (and 3-4), margin 1."""
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"anchor/positive/negative: expected equal shapes, got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    if anchor.shape[0] == 0:
        return anchor.sum() * 0.0
    d_pos = (anchor - positive).flatten(1).norm(dim=1)
    d_neg = (anchor - negative).flatten(1).norm(dim=1)
    return torch.clamp(d_pos - d_neg + margin, min=0.0).mean()


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """ "P x K" batches: ``images_per_class`` distinct images from each of ``batch_size // images_per_class``
    distinct classes, all drawn uniformly at random.

    An epoch has ``len(labels) // batch_size`` batches (at least one) and is seeded by ``seed + epoch``
    (:meth:`set_epoch`). Classes with fewer than ``images_per_class`` images are never drawn. ``labels`` are
    the dataset's labels in index order (``[r.label for r in dataset.records]`` for a
    ``wsol.data.WSOLDataset``).
    """

    def __init__(
        self, labels: Sequence[int], batch_size: int, *, images_per_class: int = 2, seed: int = 0
    ) -> None:
        if images_per_class < 2:
            raise ValueError(
                f"images_per_class: expected >= 2 (an anchor needs a positive), got {images_per_class}"
            )
        if batch_size < 2 * images_per_class:
            raise ValueError(
                f"batch_size: expected >= 2 * images_per_class = {2 * images_per_class} (two classes per "
                f"batch for negatives), got {batch_size}"
            )
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            by_class.setdefault(int(label), []).append(index)
        self._groups = [idx for _, idx in sorted(by_class.items()) if len(idx) >= images_per_class]
        if len(self._groups) < 2:
            raise ValueError(
                f"labels: need at least 2 classes with >= {images_per_class} images each, "
                f"got {len(self._groups)}"
            )
        self.images_per_class = images_per_class
        self.classes_per_batch = min(batch_size // images_per_class, len(self._groups))
        self.num_batches = max(1, len(labels) // batch_size)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed the next iteration (as ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        for _ in range(self.num_batches):
            classes = torch.randperm(len(self._groups), generator=generator)[: self.classes_per_batch]
            batch: list[int] = []
            for c in classes.tolist():
                group = self._groups[c]
                picks = torch.randperm(len(group), generator=generator)[: self.images_per_class]
                batch += [group[i] for i in picks.tolist()]
            yield batch
