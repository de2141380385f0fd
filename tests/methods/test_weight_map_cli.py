"""The weight-map configs train through the engine on a tiny synthetic dataset (32 px, 32 training images).

Method I: presets ``cam_gap`` then ``weight_map``; method II: ``weight_map_siamese`` then
``weight_map_siamese_generator``. The frozen networks of
the generator runs must come out of the engine bit-identical to the checkpoints they were loaded from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wsol.training.config import PRESET_DIR, load_config
from wsol.training.run import train

CONFIGS = PRESET_DIR
TINY = [
    "data.synthetic.train=32",
    "data.synthetic.val=8",
    "data.synthetic.test=8",
    "data.synthetic.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
    "eval.cam_curve_interval=0.01",
]


def _train(config: str, out: Path, name: str, *overrides: str) -> Path:
    cfg = load_config(
        CONFIGS / config,
        [*TINY, f"output_dir={out}", f"name={name}", f"data.cache_dir={out / 'cache'}", *overrides],
    )
    result = train(cfg)
    return result.run_dir


def _state(run_dir: Path, prefix: str) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    return {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("weight_map_runs")
    _train("cam_gap.yaml", out, "cam_gap")
    return out


def test_method_one_trains_from_the_configs_and_keeps_f_frozen(runs: Path) -> None:
    classifier = runs / "cam_gap" / "checkpoints" / "best.ckpt"
    run_dir = _train("weight_map.yaml", runs, "wm1", f"method.options.classifier.checkpoint={classifier}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["test/pxap"] <= 100.0
    assert metrics["select_on"] == "val/s_score"
    assert 0.0 <= metrics["val"]["val/s_score"] <= 1.0
    frozen = _state(run_dir, "method.classifier.net.")
    original = _state(runs / "cam_gap", "method.classifier.")
    assert frozen.keys() == original.keys()
    assert all(torch.equal(frozen[k], original[k]) for k in original)


def test_method_two_trains_both_phases(runs: Path) -> None:
    siamese_dir = _train("weight_map_siamese.yaml", runs, "siamese")
    classifier = runs / "cam_gap" / "checkpoints" / "best.ckpt"
    run_dir = _train(
        "weight_map_siamese_generator.yaml",
        runs,
        "wm2",
        f"method.options.siamese.checkpoint={siamese_dir / 'checkpoints' / 'best.ckpt'}",
        f"method.options.classifier.checkpoint={classifier}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["test/pxap"] <= 100.0
    frozen = _state(run_dir, "method.siamese.")
    original = _state(siamese_dir, "method.siamese.")
    assert frozen.keys() == original.keys()
    assert all(torch.equal(frozen[k], original[k]) for k in original)
