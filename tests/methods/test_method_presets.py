"""``wsol train --config <method>`` runs end to end for each training-time method preset (tiny overrides)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsol.training.config import load_config
from wsol.training.run import train

PRESETS = {name: name for name in ("has", "cutmix", "acol", "adl", "spg", "unet_fullsup", "ass", "amh")}
PRESETS["rcam"] = "cam"  # the thesis' weighted GAP head on the CAM baseline
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


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_trains_and_evaluates(preset: str, cache: Path, tmp_path: Path) -> None:
    config = load_config(preset, [*TINY, f"output_dir={tmp_path}", "name=run", f"data.cache_dir={cache}"])
    assert config.method.name == PRESETS[preset]
    run_dir = train(config).run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["test/pxap"] <= 100.0
    assert 0.0 <= metrics["test"]["test/max_box_acc_v2"] <= 100.0


def test_two_stage_command_scores_a_checkpoint_against_the_oracles(cache: Path, tmp_path: Path) -> None:
    from wsol.cli.main import main

    config = load_config("rcam", [*TINY, f"output_dir={tmp_path}", "name=run", f"data.cache_dir={cache}"])
    run_dir = train(config).run_dir
    data = next(path.parent for path in cache.rglob("dataset.json"))
    args = ["two-stage", "--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"), "--data", str(data)]
    assert main([*args, "--cam", "recombined_cam", "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "two_stage.json").read_text())
    assert summary["images"] == 8 and summary["cam"] == "recombined_cam"
    for delta in ("iou30", "iou50", "iou70"):
        scores = summary[delta]
        assert scores["oracle_per_image"] >= max(
            scores["two_stage"], scores["best_fixed"], scores["fixed_0.2"]
        )
        assert scores["best_fixed"] >= scores["fixed_0.2"]
