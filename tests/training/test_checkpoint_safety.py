"""Loading a checkpoint never runs code named by it, and foreign files or datasets are clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from wsol.cli.main import main
from wsol.data.synth import generate_synthetic
from wsol.evaluation import EvaluatorConfig
from wsol.methods import build_method
from wsol.methods.checkpoint import load_checkpoint
from wsol.training.inference import evaluate_checkpoint

MARKER_MODULE = """
from pathlib import Path
Path(__file__).with_name("imported.marker").write_text("module code ran")


class Evil:
    def __init__(self, **options):
        Path(__file__).with_name("called.marker").write_text(repr(options))
"""
CONFIG = {
    "data": {"transforms": {"preset": "synthetic", "crop_size": 32}, "batch_size": 4},
    "method": {"name": "cam", "options": {"backbone": "tiny", "head": "gap"}},
}


def _checkpoint(path: Path, name: str, num_classes: int = 4, options: dict | None = None) -> Path:
    """A checkpoint in the engine's format (what ``wsol train`` writes) for a tiny CAM-Avg model."""
    method = build_method("cam", num_classes, CONFIG["method"]["options"])
    config = {**CONFIG, "method": {"name": name, "options": options or CONFIG["method"]["options"]}}
    state = {f"method.{key}": value for key, value in method.state_dict().items()}
    engine = {"config": config, "num_classes": num_classes, "class_names": [], "method_state": {}}
    torch.save({"state_dict": state, "wsol": engine}, path)
    return path


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("evil_wsol_marker:Evil", {}),
        ("torch.hub:load", {"repo_or_dir": "{tmp}", "model": "x", "source": "local"}),
        ("logging:basicConfig", {"filename": "{tmp}/truncated.marker", "filemode": "w"}),
        ("evil_wsol_marker", {}),
    ],
)
def test_a_checkpoint_naming_unregistered_code_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, name: str, options: dict
) -> None:
    (tmp_path / "evil_wsol_marker.py").write_text(MARKER_MODULE)
    (tmp_path / "hubconf.py").write_text(MARKER_MODULE.replace("imported.marker", "hubconf.marker"))
    monkeypatch.syspath_prepend(str(tmp_path))
    options = {key: value.replace("{tmp}", str(tmp_path)) for key, value in options.items()}
    path = _checkpoint(tmp_path / "crafted.ckpt", name, options=options)
    expected = f"{path}: the checkpoint names method {name!r}, which is not a registered method"
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    assert expected in str(caught.value)
    out = ["--out", str(tmp_path / "out")]
    for argv in (
        ["localize", "--checkpoint", str(path), str(path), *out],
        ["evaluate", "--checkpoint", str(path), "--data", str(tmp_path), "--split", "test", *out],
    ):
        assert main(argv) == 2
        assert expected in capsys.readouterr().err
    assert not list(tmp_path.glob("*.marker")) and "evil_wsol_marker" not in sys.modules
    assert "hubconf" not in sys.modules


def test_an_installed_entry_point_may_be_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "tinycam_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinycam-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[wsol.methods]\ntinycam = wsol.methods.cam_baseline:PoolingHeadMethod\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    method = load_checkpoint(_checkpoint(tmp_path / "plugin.ckpt", "tinycam")).method
    assert type(method).__name__ == "PoolingHeadMethod" and method.num_classes == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"hello, this is a text file\n",
            "not a PyTorch checkpoint (a zip archive from torch.save); got a file",
        ),
        (b"", "got an empty file"),
        (b"PK\x03\x04 truncated zip", "not a readable checkpoint"),
    ],
    ids=["text", "empty", "broken-zip"],
)
def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(
    tmp_path: Path, capsys, content: bytes, expected: str
) -> None:
    path = tmp_path / "notes.ckpt"
    path.write_bytes(content)
    code = main(["evaluate", "--checkpoint", str(path), "--data", str(tmp_path), "--split", "test",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and str(path) in error and expected in error and "error: 101" not in error


def test_malformed_engine_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {}, "wsol": {"config": {"method": "cam"}, "num_classes": "4"}}, path)
    with pytest.raises(ValueError, match=r"odd\.ckpt: malformed 'wsol' entry"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"run: is a folder; expected a checkpoint file"):
        load_checkpoint((tmp_path / "run").mkdir() or tmp_path / "run")


@pytest.mark.parametrize("dataset_classes", [2, 5])
def test_evaluate_refuses_a_dataset_with_another_number_of_classes(
    tmp_path: Path, dataset_classes: int
) -> None:
    data = generate_synthetic(
        tmp_path / "data", num_classes=dataset_classes, image_size=32, train=1, val=1, test=dataset_classes
    )
    path = _checkpoint(tmp_path / "four.ckpt", "cam", num_classes=4)
    with pytest.raises(ValueError) as caught:
        evaluate_checkpoint(path, data, "test", None, tmp_path / "out", EvaluatorConfig())
    assert (
        f"four.ckpt: the model was trained for 4 classes, but the dataset {data} has {dataset_classes}"
        in str(caught.value)
    )
    assert not (tmp_path / "out").exists()


def test_resume_does_not_import_a_method_named_by_the_saved_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (tmp_path / "evil_wsol_marker.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / "config.yaml").write_text("method:\n  name: evil_wsol_marker:Evil\n  options: {}\n")
    assert main(["train", "--resume", str(run)]) == 2
    error = capsys.readouterr().err
    assert f"{run / 'config.yaml'}: names method 'evil_wsol_marker:Evil', an import path" in error
    assert "method.name=evil_wsol_marker:Evil" in error
    assert not list(tmp_path.glob("*.marker")) and "evil_wsol_marker" not in sys.modules


def test_a_text_file_as_backbone_weights_is_named(tmp_path: Path) -> None:
    from wsol.models import build_backbone
    from wsol.models.weights import WeightsError, load_backbone_weights

    path = tmp_path / "weights.pth"
    path.write_text("e" * 40)  # torch.load raised KeyError(101), printed as "error: 101"
    with pytest.raises(WeightsError, match=r"weights\.pth: not a PyTorch checkpoint .*expected a \.pth"):
        load_backbone_weights(build_backbone("tiny"), path)
