"""``wsol.methods.checkpoint``: the engine's checkpoints round trip through the one loader; checkpoints
written before the options were grouped (flat keys) still load; nested YAML options survive ``wsol train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from engine_helpers import ONE_BATCH

from wsol.cli.main import main
from wsol.methods import build_method
from wsol.methods.checkpoint import CHECKPOINT_KEY, load_checkpoint
from wsol.methods.minmax_entropy import MinMaxEntropy
from wsol.training.checkpoint import AtomicCheckpointIO
from wsol.training.config import to_plain
from wsol.training.module import WSOLLightningModule
from wsol.training.run import train_from_cli

NESTED = {
    "backbone": {"name": "tiny", "weights": None},
    "wildcat": {"kmax": 0.3, "modalities": 2},
    "mask": {"omega": 5.0, "detach": True},
    "erasing": {"depth": 2, "start_epoch": 0},
}


def _images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def test_engine_checkpoint_round_trips_through_the_loader(tmp_path: Path) -> None:
    torch.manual_seed(0)
    method = build_method("minmax_entropy", 3, NESTED)
    for epoch in range(3):
        method.on_train_epoch_end(epoch)
    config = {"method": {"name": "minmax_entropy", "options": NESTED}, "data": {}}
    module = WSOLLightningModule(method, config, class_names=["a", "b", "c"])
    checkpoint: dict[str, Any] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    AtomicCheckpointIO().save_checkpoint(checkpoint, tmp_path / "run.ckpt")

    loaded = load_checkpoint(tmp_path / "run.ckpt")
    assert isinstance(loaded.method, MinMaxEntropy) and not loaded.method.training
    assert loaded.class_names == ["a", "b", "c"] and loaded.config["method"]["options"] == NESTED
    assert loaded.method.epoch == 3 and loaded.method.erasing.depth == 2
    images = _images()
    expected = method.eval().predict(images)
    got = loaded.method.predict(images)
    assert torch.equal(got.maps, expected.maps) and torch.equal(got.logits, expected.logits)


def test_a_checkpoint_with_old_flat_options_loads(tmp_path: Path) -> None:
    """A hand-written checkpoint as `wsol train` wrote it before the options were grouped."""
    torch.manual_seed(0)
    reference = build_method("minmax_entropy", 3, NESTED)
    flat = {
        "backbone": "tiny",
        "weights": "imagenet",  # only initialised the run; must not be downloaded again
        "kmax": 0.3,
        "modalities": 2,
        "omega": 5.0,
        "detach_mask": True,
        "erasing_depth": 2,
        "erasing_start_epoch": 0,
    }
    engine = {
        "config": {"method": {"name": "minmax_entropy", "options": flat}, "data": {"batch_size": 4}},
        "num_classes": 3,
        "class_names": ["a", "b", "c"],
        "method_state": {"epoch": 1, "sigma": 0.5, "t": 5.0},
    }
    state = {f"method.{key}": value for key, value in reference.state_dict().items()}
    torch.save({"state_dict": state, CHECKPOINT_KEY: engine}, tmp_path / "old.ckpt")

    loaded = load_checkpoint(tmp_path / "old.ckpt")
    method = loaded.method
    assert isinstance(method, MinMaxEntropy)
    assert (method.erasing.depth, method.erasing.start_epoch, method.mask.omega) == (2, 0, 5.0)
    assert method.backbone_spec.name == "tiny" and method.backbone_spec.weights is None
    assert loaded.config["method"]["options"]["erasing"] == {"depth": 2, "start_epoch": 0}
    assert loaded.config["method"]["options"]["backbone"] == {"name": "tiny", "weights": "imagenet"}
    assert loaded.config["data"] == {"batch_size": 4}
    images = _images()
    assert torch.equal(method.predict(images).maps, reference.eval().predict(images).maps)


def test_loader_errors_name_the_option_and_file(tmp_path: Path) -> None:
    expected = r"classifier\.checkpoint: .*missing\.ckpt: checkpoint not found"
    with pytest.raises(FileNotFoundError, match=expected):
        load_checkpoint(tmp_path / "missing.ckpt", "classifier.checkpoint")
    torch.save({"state_dict": {}, CHECKPOINT_KEY: {"config": {}}}, tmp_path / "odd.ckpt")
    with pytest.raises(ValueError, match=r"odd\.ckpt: malformed 'wsol' entry"):
        load_checkpoint(tmp_path / "odd.ckpt")


ONE_STEP = [
    "data.synthetic.train=8",
    "data.synthetic.val=4",
    "data.synthetic.test=4",
    "data.synthetic.image_size=32",
    *ONE_BATCH,
    "eval.cam_curve_interval=0.1",
]


def test_nested_options_through_wsol_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["train", "--config", "minmax_entropy", *ONE_STEP, f"data.cache_dir={tmp_path / 'cache'}"]
    old = [*common, f"output_dir={tmp_path}", "name=old", "method.options.erasing_depth=2"]
    assert main(old) == 2
    assert "erasing_depth was renamed: use method.options.erasing.depth" in capsys.readouterr().err
    assert not (tmp_path / "old").exists()

    new = ["method.options.erasing.depth=2", "method.options.erasing.start_epoch=0"]
    assert main([*common, f"output_dir={tmp_path}", "name=run", *new]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["method"]["options"]
    assert saved["erasing"]["depth"] == 2 and saved["mask"]["detach"] is True
    loaded = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert isinstance(loaded.method, MinMaxEntropy)
    assert loaded.method.erasing.depth == 2 and loaded.method.erasing.start_epoch == 0


def test_a_run_folder_saved_with_old_keys_resumes_with_the_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    old = "{backbone: tiny, erasing_depth: 2, detach_mask: false}"
    (run / "config.yaml").write_text(f"method:\n  name: minmax_entropy\n  options: {old}\n")
    monkeypatch.setattr("wsol.training.run.train", lambda config, **_: config)
    config = train_from_cli(None, ["method.options.erasing.slope=5"], run)
    assert to_plain(config)["method"]["options"] == {
        "backbone": {"name": "tiny"},
        "erasing": {"depth": 2, "slope": 5},
        "mask": {"detach": False},
    }
    with pytest.raises(ValueError, match="erasing_slope was renamed: use method.options.erasing.slope"):
        train_from_cli(None, ["method.options.erasing_slope=5"], run)  # the user's own overrides stay strict
