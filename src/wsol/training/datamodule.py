"""Data loading for the engine: exact-resume training order, DDP sharding without padding.

Training order is a permutation seeded by ``(seed, epoch)``; rank ``r`` of ``W`` takes every ``W``-th index,
so the union of the ranks' ``k``-th batches of size ``b`` is the ``k``-th batch of size ``W·b`` of a
one-process run (the DDP-equivalence test relies on it). Evaluation shards are ``indices[r::W]`` with no
padding or duplicates, so merged metrics equal one-process metrics. The loader position is part of the
checkpoint, so a resumed run continues with the batch that follows the last saved step.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.synth import default_cache_dir
from wsol.data.transforms import JointTransform, TransformConfig, build_transforms


def default_workers(cached: bool) -> int:
    """Loader processes when ``data.num_workers`` is null.

    Without the decoded cache, decoding in other processes overlaps it with the model's step: one per CPU
    core left to the model, at most 2 (on BUSI, 2 cores: 0.80–0.86 × the epoch wall time of 0 workers). With
    the cache a sample costs a memory-mapped read and the augmentations (about 2 ms at 224 px), less than
    shipping the float batch back from a worker: 0 (``benchmarks/bench_cache.py``, docs/data.md).
    """
    if cached:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2, max(cores - 1, 0))


class ShardSampler(Sampler[int]):
    """Indices of one rank: ``perm(seed, epoch)[rank::world_size]`` (train) or ``range(n)[rank::world_size]``.

    Training truncates the permutation to a multiple of ``world_size`` so that all ranks run the same number
    of steps. ``skip`` drops the first indices of the next iteration only (resume inside an epoch; the length
    stays the epoch's, as Lightning resumes its batch counter at the saved index).
    """

    def __init__(
        self,
        dataset: WSOLDataset,
        *,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
        skip: int = 0,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.skip = skip
        self.epoch = epoch
        dataset.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def _indices(self) -> list[int]:
        size = len(self.dataset)
        if not self.shuffle:
            return list(range(size))[self.rank :: self.world_size]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(size, generator=generator).tolist()
        usable = (size // self.world_size) * self.world_size
        return order[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        indices = self._indices()[self.skip :]
        self.skip = 0
        return iter(indices)

    def __len__(self) -> int:
        # The whole epoch even while skipping: Lightning counts a resumed epoch's batches from the saved one.
        return len(self._indices())


class ResumableBatchSampler(Sampler[list[int]]):
    """Wraps a batch sampler with ``set_epoch`` (class-balanced batches): forwards the epoch to it and to the
    dataset, and drops the first ``skip`` batches of the next iteration (resume inside an epoch)."""

    def __init__(self, batches: Any, dataset: WSOLDataset, *, epoch: int = 0, skip: int = 0) -> None:
        self.batches = batches
        self.dataset = dataset
        self.skip = skip
        self.epoch = epoch
        batches.set_epoch(epoch)
        dataset.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch
        self.batches.set_epoch(epoch)
        self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.batches), skip, None)

    def __len__(self) -> int:
        return len(self.batches)


class WSOLDataModule(L.LightningDataModule):
    """Train/val/test loaders over a dataset root; ``position`` reads the module's (epoch, batches done)."""

    def __init__(self, root: Path, data: dict[str, Any], seed: int) -> None:
        super().__init__()
        self.root = Path(root)
        self.data = data
        self.seed = seed
        transform_config = TransformConfig.from_dict(dict(data.get("transforms") or {}))
        self.train_transform = build_transforms(transform_config, train=True)
        self.eval_transform = build_transforms(transform_config, train=False)
        self._resume: tuple[int, int] | None = None

    def _workers(self) -> int:
        workers = self.data.get("num_workers")
        return default_workers(bool(self.data.get("cache"))) if workers is None else int(workers)

    def _rank(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _dataset(self, split: str, transform: JointTransform) -> WSOLDataset:
        dataset = WSOLDataset(self.root, split, transform, seed=self.seed)
        if self.data.get("cache"):
            dataset.use_cache(self.data.get("cache_dir") or default_cache_dir())
        return dataset

    def _loader(self, dataset: WSOLDataset, sampler: ShardSampler, batch_size: int) -> DataLoader:
        workers = self._workers()
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset(self.data["train_split"], self.train_transform)
        rank, world = self._rank()
        epoch, done = self._resume or (0, 0)
        self._resume = None
        batch_size = int(self.data["batch_size"])
        if self.data.get("sampler") == "class_balanced":
            return self._class_balanced_loader(dataset, epoch, done, world)
        sampler = ShardSampler(
            dataset,
            shuffle=True,
            seed=self.seed,
            rank=rank,
            world_size=world,
            epoch=epoch,
            skip=done * batch_size,
        )
        return self._loader(dataset, sampler, batch_size)

    def _class_balanced_loader(self, dataset: WSOLDataset, epoch: int, done: int, world: int) -> DataLoader:
        from wsol.methods.triplets import ClassBalancedBatchSampler

        if world > 1:
            raise ValueError(
                "data.sampler=class_balanced: supported with one process only (trainer.devices=1)"
            )
        batches = ClassBalancedBatchSampler(
            [record.label for record in dataset.records],
            int(self.data["batch_size"]),
            images_per_class=int(self.data["images_per_class"]),
            seed=self.seed,
        )
        return DataLoader(
            dataset,
            batch_sampler=ResumableBatchSampler(batches, dataset, epoch=epoch, skip=done),
            num_workers=self._workers(),
            collate_fn=collate,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self._dataset(split, self.eval_transform)
        rank, world = self._rank()
        sampler = ShardSampler(dataset, shuffle=False, seed=self.seed, rank=rank, world_size=world)
        return self._loader(dataset, sampler, int(self.data["eval_batch_size"] or self.data["batch_size"]))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.data["val_split"])

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.data["test_split"])

    def state_dict(self) -> dict[str, Any]:
        module = self.trainer.lightning_module if self.trainer is not None else None
        position = getattr(module, "train_position", (0, 0))
        return {"epoch": int(position[0]), "batches_done": int(position[1])}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = (int(state_dict["epoch"]), int(state_dict["batches_done"]))
