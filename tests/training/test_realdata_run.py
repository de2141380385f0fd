"""A real-data path end to end: import BUSI's layout, train a preset with ``data.root`` only, evaluate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from wsol.cli.main import main
from wsol.data.importers import import_dataset
from wsol.training.config import load_config
from wsol.training.run import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "importers"))
from realdata_fixtures import build_busi  # noqa: E402


def test_preset_trains_on_varying_sizes_with_no_size_option(tmp_path):
    data = tmp_path / "busi"
    import_dataset("busi", build_busi(tmp_path / "src"), data)  # 40 x 32 and 48 x 38 images
    overrides = [
        f"data.root={data}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.frame_size=32",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        f"output_dir={tmp_path / 'runs'}",
        "name=run",
    ]
    result = train(load_config(Path("cam_gap"), overrides))
    saved = OmegaConf.load(result.run_dir / "config.yaml")
    assert saved.data.transforms.frame == 32  # the resolved policy is recorded with the run
    assert list((tmp_path / "cache" / "decoded").iterdir())
    assert "test/pxap" in result.test
    out = tmp_path / "eval"
    args = ["evaluate", "--checkpoint", str(result.checkpoint), "--data", str(data), "--split", "test"]
    assert main([*args, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_no_object_images"] >= 1 and metrics["top1_acc"] is not None
    assert metrics["num_mask_images"] == metrics["num_images"] - metrics["num_no_object_images"]


def test_default_workers_policy(monkeypatch):
    from wsol.training import datamodule

    monkeypatch.setattr(datamodule.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert datamodule.default_workers(cached=True) == 0
    assert datamodule.default_workers(cached=False) == 1
    monkeypatch.setattr(datamodule.os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert datamodule.default_workers(cached=False) == 2
    monkeypatch.setattr(datamodule.os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert datamodule.default_workers(cached=False) == 0
