"""The run folder: relative checkpoint paths, an exclusive lock naming its holder, unique default names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_helpers import TINY, cli_env

from wsol.cli.main import main
from wsol.training.checkpoint import BestCheckpoint
from wsol.training.config import load_config
from wsol.training.run import run_dir_for
from wsol.training.run_folder import locked_run_folder

HOLD_LOCK = """
import sys
from wsol.training.run_folder import locked_run_folder
with locked_run_folder(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _best(run_dir: Path) -> BestCheckpoint:
    return BestCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val/error", save_top_k=1)


def test_best_checkpoint_state_is_relative_and_follows_a_moved_folder(tmp_path: Path) -> None:
    old = _best(tmp_path / "old")
    path = os.path.join(old.dirpath, "best.ckpt")
    old.best_model_path = old.kth_best_model_path = path
    old.best_model_score = torch.tensor(12.5)
    old.best_k_models = {path: torch.tensor(12.5)}
    state = old.state_dict()
    assert state["dirpath"] == "checkpoints" and state["best_model_path"] == "checkpoints/best.ckpt"
    assert list(state["best_k_models"]) == ["checkpoints/best.ckpt"]
    moved = _best(tmp_path / "new")
    moved.load_state_dict(state)
    expected = str((tmp_path / "new" / "checkpoints" / "best.ckpt").resolve())
    assert moved.best_model_path == moved.kth_best_model_path == expected
    assert list(moved.best_k_models) == [expected]
    assert moved.best_model_score == 12.5  # Lightning drops it when the folder differs


def test_a_second_run_on_a_locked_folder_refuses_naming_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)],
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert main(["train", *TINY, f"output_dir={tmp_path}", "name=busy"]) == 2
        error = capsys.readouterr().err
        assert f"{run_dir}: the run folder is in use by another `wsol train` (pid {holder.pid})" in error
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]
    finally:
        holder.communicate("")
    assert holder.returncode == 0


def test_default_run_names_are_unique(tmp_path: Path) -> None:
    config = load_config(None, [f"output_dir={tmp_path}", "method.name=cam"])
    folders = [run_dir_for(config) for _ in range(3)]  # within one second: same timestamp
    assert len(set(folders)) == 3 and all(folder.is_dir() for folder in folders)
    assert folders[1].name == f"{folders[0].name}-2"
    named = load_config(None, [f"output_dir={tmp_path}", "name=mine"])
    assert run_dir_for(named) == run_dir_for(named) == tmp_path.resolve() / "mine"


def test_an_output_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=r"^output_dir: cannot create .*file/cam-.*\(Not a directory\)"):
        run_dir_for(load_config(None, [f"output_dir={blocker}"]))
    with pytest.raises(ValueError, match=r"file/run: cannot create the run folder or its lock \(Not a dir"):
        with locked_run_folder(blocker / "run"):
            pass
    assert blocker.read_text() == "not a folder"
