"""The command line starts without torch: every verb's ``--help``, ``wsol list``, ``wsol evaluate --maps``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsol.cli.main import build_parser, main
from wsol.data.format import DatasetInfo, ImageRecord, write_dataset
from wsol.registry import Registry

HEAVY = ("torch", "lightning", "pytorch_lightning", "kornia", "timm")

_REPORT_HEAVY = f"""
import json, sys
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))
"""


def _heavy_modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter and return the heavy top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-c", code + _REPORT_HEAVY],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser([*argv, "--help"]).parse_args([*argv, "--help"])
    return out.getvalue()


def test_help_of_every_verb_imports_no_torch() -> None:
    code = """
import contextlib, io
from wsol.cli.main import COMMANDS, DATA_COMMANDS, build_parser
for argv in [[]] + [[v] for v in COMMANDS] + [["data", v] for v in DATA_COMMANDS]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        build_parser(argv + ["--help"]).parse_args(argv + ["--help"])
"""
    assert _heavy_modules_after(code) == []


def test_help_lists_cams_presets_and_importers() -> None:
    for verb in ("localize", "evaluate"):
        assert "gradcam" in _help([verb]) and "ablationcam" in _help([verb])
    train_help = _help(["train"])
    assert "minmax_entropy" in train_help and "paper/glas_minmax" in train_help
    assert "glas" in _help(["data", "import"])
    assert {"train", "evaluate", "localize", "demo", "list", "data"} <= set(_help([]).split())


def test_list_prints_every_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert set(tables) == {"methods", "heads", "backbones", "cams", "importers", "presets", "metrics"}
    assert "minmax_entropy" in tables["methods"] and "resnet50" in tables["backbones"]
    assert "gap" in tables["heads"] and "scorecam" in tables["cams"] and "cub" in tables["importers"]
    assert "cam_gap" in tables["presets"] and {"pxap", "max_box_acc_v2", "top1_loc"} <= set(tables["metrics"])
    assert _heavy_modules_after("from wsol.cli.main import main; main(['list'])") == []


def test_evaluate_maps_runs_without_torch(tmp_path: Path) -> None:
    records = [ImageRecord(f"im{i}.jpg", i % 2, 32, 24, boxes=((4.0, 3.0, 20.0, 15.0),)) for i in range(3)]
    write_dataset(tmp_path / "data", DatasetInfo(name="toy", num_classes=2, splits=[]), {"test": records})
    (tmp_path / "maps").mkdir()
    for i, record in enumerate(records):
        scoremap = np.zeros((24, 32), np.float32)
        scoremap[3 + i : 15, 4:20] = 1.0
        np.save(tmp_path / "maps" / f"{record.image_id}.npy", scoremap)
    argv = ["evaluate", "--maps", str(tmp_path / "maps"), "--data", str(tmp_path / "data"), "--split", "test"]
    argv += ["--out", str(tmp_path / "out"), "--cam-curve-interval", "0.1"]
    assert _heavy_modules_after(f"from wsol.cli.main import main; assert main({argv!r}) == 0") == []
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["num_box_images"] == 3 and metrics["max_box_acc"]["50"] == 100.0


def test_registry_lists_names_without_importing_and_names_unknown_ones() -> None:
    registry: Registry[object] = Registry("widget", {"real": "json:dumps", "ghost": "wsol_no_such_module:X"})
    assert list(registry) == ["real", "ghost"] and "ghost" in registry and len(registry) == 2
    assert registry["real"] is json.dumps
    with pytest.raises(ModuleNotFoundError):
        registry["ghost"]
    with pytest.raises(KeyError, match=r"unknown widget 'other'; expected one of \['ghost', 'real'\]"):
        registry["other"]
