"""Engine parts with hand-computed expectations: LR schedule, sampler sharding/resume, atomic checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.training.checkpoint import AtomicCheckpointIO, read_checkpoint
from wsol.training.datamodule import ShardSampler
from wsol.training.module import StepDecayLR, _rng_state, _set_rng_state, build_optimizer


class _Indexable:
    """Stands in for a WSOLDataset: a length and ``set_epoch``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.epoch = -1

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def test_step_decay_with_floor_per_group() -> None:
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = build_optimizer(
        [{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 1.0}],
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
    )
    assert optimizer.defaults["nesterov"] is True
    scheduler = StepDecayLR(optimizer, step_size=2, gamma=0.1, min_lr=5e-3)
    seen = []
    for _ in range(6):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    expected = [[0.1, 1.0], [0.1, 1.0], [0.01, 0.1], [0.01, 0.1], [5e-3, 0.01], [5e-3, 0.01]]
    assert [pytest.approx(row) for row in expected] == seen


def test_nesterov_is_dropped_without_momentum() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer(
        [{"params": [param], "lr": 0.1}],
        {"name": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": True, "weight_decay": 0.0},
    )
    assert optimizer.defaults["nesterov"] is False


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 50), world=st.integers(1, 4), epoch=st.integers(0, 5))
def test_shards_partition_the_epoch_permutation(size: int, world: int, epoch: int) -> None:
    """Union of the ranks' k-th batches of b = k-th batch of W*b of a one-process run; no duplicates."""
    dataset = _Indexable(size)
    single = list(ShardSampler(dataset, shuffle=True, seed=3, epoch=epoch))  # type: ignore[arg-type]
    usable = (size // world) * world
    shards = [
        list(ShardSampler(dataset, shuffle=True, seed=3, rank=r, world_size=world, epoch=epoch))  # type: ignore[arg-type]
        for r in range(world)
    ]
    assert sorted(single) == list(range(size))
    batch = 2
    for k in range(usable // (world * batch)):
        merged = sorted(i for shard in shards for i in shard[k * batch : (k + 1) * batch])
        assert merged == sorted(single[k * world * batch : (k + 1) * world * batch])
    evaluation = [
        list(ShardSampler(dataset, shuffle=False, seed=0, rank=r, world_size=world))  # type: ignore[arg-type]
        for r in range(world)
    ]
    assert sorted(i for shard in evaluation for i in shard) == list(range(size))


def test_skip_applies_once_and_epoch_reaches_dataset() -> None:
    dataset = _Indexable(10)
    sampler = ShardSampler(dataset, shuffle=True, seed=0, epoch=2, skip=4)  # type: ignore[arg-type]
    assert dataset.epoch == 2
    full = ShardSampler(_Indexable(10), shuffle=True, seed=0, epoch=2)  # type: ignore[arg-type]
    assert len(sampler) == 10
    assert list(sampler) == list(full)[4:]
    assert list(sampler) == list(full)
    sampler.skip = 3
    sampler.set_epoch(3)
    assert sampler.skip == 0 and dataset.epoch == 3
    assert list(sampler) != list(full)


def test_atomic_checkpoint_round_trip_and_no_partial_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpt" / "last.ckpt"
    payload = {"state_dict": {"w": torch.arange(4.0)}, "epoch": 3, "wsol": {"config": {"a": [1, "x"]}}}
    io.save_checkpoint(payload, path)
    loaded = io.load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(4.0)) and loaded["wsol"] == payload["wsol"]

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        io.save_checkpoint({"bad": Unpicklable()}, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.arange(4.0))
    assert sorted(os.listdir(path.parent)) == ["last.ckpt"]


def test_read_checkpoint_refuses_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"obj": _Indexable(3)}, path)
    with pytest.raises(ValueError, match=r"evil\.ckpt.*not a readable checkpoint"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_rng_state_round_trip_is_weights_only_safe(tmp_path: Path) -> None:
    import random

    import numpy as np

    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    random.seed(5)
    path = tmp_path / "rng.ckpt"
    AtomicCheckpointIO().save_checkpoint({"rng": _rng_state()}, path)
    expected = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    _set_rng_state(read_checkpoint(path)["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])  # noqa: NPY002
    assert random.random() == expected[2]


def test_class_balanced_loader_batches_and_resume(tmp_path: Path) -> None:
    from wsol.data.synth import ensure_synthetic
    from wsol.training.datamodule import WSOLDataModule

    root = ensure_synthetic(tmp_path, image_size=32, train=24, val=4, test=4)
    data = {
        "transforms": {},
        "train_split": "train",
        "batch_size": 6,
        "num_workers": 0,
        "sampler": "class_balanced",
        "images_per_class": 2,
    }
    module = WSOLDataModule(root, data, seed=1)
    batches = [batch["label"].tolist() for batch in module.train_dataloader()]
    assert len(batches) == 4
    for labels in batches:
        assert len(labels) == 6 and all(labels.count(label) == 2 for label in labels)
    module.load_state_dict({"epoch": 0, "batches_done": 3})
    resumed = [batch["label"].tolist() for batch in module.train_dataloader()]
    assert resumed == batches[3:]
