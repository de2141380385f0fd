"""The real-data ``*_lite0`` presets: each loads with ``data.root`` only, starts from ImageNet-pretrained
EfficientNet-Lite0 and trains one step on an imported BUSI-layout fixture; the second runs of the documented
two-step path (``weight_map_lite0``, ``fcam_lite0``, ``negev_lite0``) find the ``cam_gap_lite0`` run by its
default relative path, and name it when it is missing."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from engine_helpers import ONE_BATCH
from omegaconf import DictConfig

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
    "unet_fullsup_lite0",
)
# Second runs over a frozen cam_gap_lite0 classifier, found by the default relative path of the two-step path.
TWO_STEP = (
    "weight_map_lite0",
    "fcam_lite0",
    "negev_lite0",
)
CAM_GAP_CHECKPOINT = "runs/cam_gap_lite0/checkpoints/best.ckpt"
ONE_STEP = [
    "data.frame_size=32",
    *ONE_BATCH,
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
    spec = options.get("backbone")
    if isinstance(spec, DictConfig):  # a BackboneSpec section (min-max entropy)
        assert (spec.name, spec.weights) == ("efficientnet_lite0", "imagenet")
    else:
        backbone = options.get("backbone", options.get("encoder"))
        assert (backbone, options.weights) == ("efficientnet_lite0", "imagenet")


@pytest.mark.parametrize("preset", SINGLE_RUN)
def test_preset_trains_one_step_on_imported_data(preset, busi, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_preset(preset)
    result = one_step(preset, busi, tmp_path, f"name={preset}")
    assert result.checkpoint == tmp_path / "runs" / preset / "checkpoints" / "best.ckpt"
    assert math.isfinite(result.test["test/pxap"])


@pytest.fixture(scope="module")
def cam_gap_folder(busi, tmp_path_factory) -> Path:
    """A folder holding ``runs/cam_gap_lite0`` (one step): the first of the documented two runs."""
    folder = tmp_path_factory.mktemp("two_step")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        one_step("cam_gap_lite0", busi, folder, "name=cam_gap_lite0")
    return folder


@pytest.mark.parametrize("preset", TWO_STEP)
def test_two_step_preset_uses_the_cam_gap_run(preset, busi, cam_gap_folder, tmp_path, monkeypatch):
    config = load_config(Path(preset), [])
    options = config.method.options  # weight_map: a typed `classifier` section; F-CAM/NEGEV: a flat key
    recorded = options.classifier.checkpoint if "classifier" in options else options.classifier_checkpoint
    assert config.data.root is None and recorded == CAM_GAP_CHECKPOINT
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=CAM_GAP_CHECKPOINT):
        one_step(preset, busi, tmp_path, "name=too_early")
    monkeypatch.chdir(cam_gap_folder)
    result = one_step(preset, busi, tmp_path, f"name={preset}")
    assert result.checkpoint == cam_gap_folder / "runs" / preset / "checkpoints" / "best.ckpt"
    assert math.isfinite(result.test["test/pxap"])
