"""The real-data ``*_lite0`` presets: each loads with ``data.root`` only, starts from ImageNet-pretrained
EfficientNet-Lite0 and trains one step on an imported BUSI-layout fixture; ``weight_map_lite0`` finds the
``cam_gap_lite0`` run of the documented two-step path by its default relative path."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from wsol.data.importers import import_dataset
from wsol.training.config import load_config
from wsol.training.run import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "importers"))
from realdata_fixtures import build_busi  # noqa: E402

SINGLE_RUN = (
    "cam_gap_lite0",
    "wgap_lite0",
    "wildcat_lite0",
    "minmax_entropy_lite0",
    "minmax_entropy_no_erasing_lite0",
    "maxmin_uncertainty_sem_lite0",
    "has_lite0",
    "acol_lite0",
    "spg_lite0",
    "adl_lite0",
    "cutmix_lite0",
    "ass_lite0",
    "amh_lite0",
    "rcam_lite0",
)
ONE_STEP = [
    "data.frame_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.progress_bar=false",
]


@pytest.fixture(scope="module")
def busi(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("busi")
    data = root / "data"
    import_dataset("busi", build_busi(root / "src"), data)
    return data


def one_step(preset: str, data: Path, tmp_path: Path, *extra: str):
    overrides = [f"data.root={data}", f"data.cache_dir={tmp_path / 'cache'}", *ONE_STEP, *extra]
    return train(load_config(Path(preset), overrides))


def check_preset(preset: str) -> None:
    config = load_config(Path(preset), [])
    assert config.data.root is None and config.data.synthetic == {}
    options = config.method.options
    backbone = options.get("backbone", options.get("encoder"))
    assert (backbone, options.weights) == ("efficientnet_lite0", "imagenet")


@pytest.mark.parametrize("preset", SINGLE_RUN)
def test_preset_trains_one_step_on_imported_data(preset, busi, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_preset(preset)
    result = one_step(preset, busi, tmp_path, f"name={preset}")
    assert result.checkpoint == tmp_path / "runs" / preset / "checkpoints" / "best.ckpt"
    assert math.isfinite(result.test["test/pxap"])


def test_weight_map_preset_uses_the_cam_gap_run(busi, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_preset("weight_map_lite0")
    with pytest.raises(FileNotFoundError, match="runs/cam_gap_lite0/checkpoints/best.ckpt"):
        one_step("weight_map_lite0", busi, tmp_path, "name=too_early")
    one_step("cam_gap_lite0", busi, tmp_path, "name=cam_gap_lite0")
    result = one_step("weight_map_lite0", busi, tmp_path, "name=weight_map")
    assert result.checkpoint.is_file() and math.isfinite(result.test["test/pxap"])
