"""The decoded cache: same samples as decoding, reused across datasets, rebuilt when a source changes."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

import wsol.data.cache as cache_module
from wsol.data.dataset import WSOLDataset, collate
from wsol.data.transforms import TransformConfig, build_transforms


def _samples(dataset):
    return [dataset[i] for i in range(len(dataset))]


def test_cache_without_resize_gives_identical_samples(tiny_synth, tmp_path):
    transform = build_transforms(
        TransformConfig.from_dict({"preset": "synthetic-d4", "crop_size": 56}), train=True
    )
    plain = WSOLDataset(tiny_synth, "train", transform, seed=5)
    cached = WSOLDataset(tiny_synth, "train", transform, seed=5).use_cache(tmp_path)
    for a, b in zip(_samples(plain), _samples(cached), strict=True):
        for key in ("image", "mask", "ignore", "boxes"):
            assert torch.equal(a[key], b[key]), key
        assert a["orig_size"] == b["orig_size"] and a["has_mask"] == b["has_mask"]


def test_cache_at_a_resized_frame_is_within_half_a_grey_level(tiny_synth, tmp_path):
    transform = build_transforms(
        TransformConfig(frame=40, std=(1.0, 1.0, 1.0), mean=(0.0, 0.0, 0.0)), train=False
    )
    plain = WSOLDataset(tiny_synth, "val", transform)
    cached = WSOLDataset(tiny_synth, "val", transform).use_cache(tmp_path)
    for a, b in zip(_samples(plain), _samples(cached), strict=True):
        assert a["image"].shape == b["image"].shape == (3, 40, 40)
        assert (a["image"] - b["image"]).abs().max() <= 0.5 / 255 + 1e-6
        assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["boxes"], b["boxes"])


def test_cache_is_reused_and_rebuilt_when_a_source_changes(tiny_synth, tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(tiny_synth, root)
    transform = build_transforms(TransformConfig(), train=False)
    WSOLDataset(root, "test", transform).use_cache(tmp_path / "cache")
    folders = list((tmp_path / "cache" / "decoded").iterdir())
    assert len(folders) == 1
    writes = []
    original = cache_module._write
    monkeypatch.setattr(cache_module, "_write", lambda *args: writes.append(1) or original(*args))
    WSOLDataset(root, "test", transform).use_cache(tmp_path / "cache")
    assert writes == []  # reused: nothing decoded again
    dataset = WSOLDataset(root, "test", transform)
    image = dataset.image_root / dataset.records[0].image_id
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the source changed
    dataset.use_cache(tmp_path / "cache")
    assert writes == [1]
    assert list((tmp_path / "cache" / "decoded").iterdir()) != folders  # the stale folder is gone
    assert len(list((tmp_path / "cache" / "decoded").iterdir())) == 1
    WSOLDataset(root, "val", transform).use_cache(tmp_path / "cache")  # other split: its own folder
    assert len(list((tmp_path / "cache" / "decoded").iterdir())) == 2


@pytest.mark.parametrize("workers", [2])
def test_cached_loader_results_do_not_depend_on_workers(tiny_synth, tmp_path, workers):
    transform = build_transforms(
        TransformConfig.from_dict({"preset": "synthetic-d4", "crop_size": 40, "frame": 48}), train=True
    )
    dataset = WSOLDataset(tiny_synth, "train", transform, seed=3).use_cache(tmp_path)

    def batches(count):
        loader = DataLoader(dataset, batch_size=3, num_workers=count, collate_fn=collate)
        return [(b["image"], b["mask"], b["boxes"]) for b in loader]

    for (ia, ma, ba), (ib, mb, bb) in zip(batches(0), batches(workers), strict=True):
        assert torch.equal(ia, ib) and torch.equal(ma, mb)
        assert all(torch.equal(x, y) for x, y in zip(ba, bb, strict=True))
