"""``wsol train --config <method>`` runs end to end for each training-time method preset (tiny overrides)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsol.training.config import load_config
from wsol.training.run import train

PRESETS = ["has", "cutmix", "acol", "adl", "spg", "unet_fullsup", "ass", "amh"]
TINY = [
    "data.synthetic.train=16",
    "data.synthetic.val=8",
    "data.synthetic.test=8",
    "data.synthetic.image_size=32",
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "trainer.log_every_n_steps=1",
    "eval.cam_curve_interval=0.01",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("method_presets_cache")


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_and_evaluates(preset: str, cache: Path, tmp_path: Path) -> None:
    config = load_config(preset, [*TINY, f"output_dir={tmp_path}", "name=run", f"data.cache_dir={cache}"])
    assert config.method.name == preset
    run_dir = train(config).run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["test/pxap"] <= 100.0
    assert 0.0 <= metrics["test"]["test/max_box_acc_v2"] <= 100.0
