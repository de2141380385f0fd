"""End-to-end runs of ``wsol train`` on a tiny synthetic dataset (32 px, 32 training images, tiny backbone).

Same seed => identical metrics; SIGKILL mid-epoch + ``--resume`` => the uninterrupted run's metrics; 2 DDP
processes on gloo => the 1-process metrics; a NaN loss => a clear error naming the step and last checkpoint.
Runs go through the CLI in subprocesses (single-threaded, as DDP children would be).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import TINY, cli_env, read_metrics, run_cli, train_command

from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.training.checkpoint import read_checkpoint
from wsol.training.config import load_config
from wsol.training.module import NonFiniteLossError
from wsol.training.run import train


def test_run_folder_and_safe_checkpoints(reference: Path) -> None:
    metrics = read_metrics(reference)
    assert metrics["global_step"] == 8 and metrics["epochs_trained"] == 2
    for key in ("test/error", "test/pxap", "test/max_box_acc_v2", "test/f1_pos", "test/f1_neg", "val/error"):
        assert key in metrics["test"] or key in metrics["val"]
    assert 0.0 <= metrics["test"]["test/pxap"] <= 100.0
    assert (reference / "config.yaml").is_file()
    header = (reference / "logs" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss_step" in header and "val/error" in header
    assert list((reference / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("last.ckpt", "best.ckpt"):
        checkpoint = torch.load(reference / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert checkpoint["wsol"]["config"]["name"] == "reference"
    assert not [p for p in (reference / "checkpoints").iterdir() if p.name.startswith(".")]


def test_same_seed_same_metrics(reference: Path, tmp_path: Path) -> None:
    run_cli(train_command(tmp_path, "again"), tmp_path)
    first, second = read_metrics(reference), read_metrics(tmp_path / "again")
    assert first["val"] == second["val"] and first["test"] == second["test"]


def test_resume_after_sigkill_reaches_the_same_metrics(reference: Path, tmp_path: Path) -> None:
    command = train_command(tmp_path, "killed", "trainer.max_epochs=2")
    process = subprocess.Popen(
        command, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "metrics.json").exists()
    epoch, done = read_checkpoint(last)["wsol"]["train_position"]
    assert epoch == 0 and 0 < done < 4, "the kill should land inside the first epoch"
    run_cli([sys.executable, "-m", "wsol.cli.main", "train", "--resume", str(tmp_path / "killed")], tmp_path)
    resumed, expected = read_metrics(tmp_path / "killed"), read_metrics(reference)
    logs = tmp_path / "killed" / "logs"
    assert (logs / "csv" / "metrics.csv").is_file() and (logs / "csv-resume1" / "metrics.csv").is_file()
    assert resumed["global_step"] == expected["global_step"]
    assert resumed["val"] == expected["val"] and resumed["test"] == expected["test"]


def test_ddp_two_processes_match_one_process(tmp_path: Path) -> None:
    common = ("method.name=engine_test_methods:FrozenBatchNormCAM", "trainer.max_epochs=1")
    run_cli(train_command(tmp_path, "single", *common, "data.batch_size=8"), tmp_path)
    run_cli(
        train_command(
            tmp_path,
            "ddp",
            *common,
            "data.batch_size=4",
            "trainer.strategy=ddp",
            "trainer.devices=2",
            "data.eval_batch_size=3",
        ),
        tmp_path,
    )
    single, ddp = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp")
    assert single["global_step"] == ddp["global_step"] == 4
    for split in ("val", "test"):
        assert single[split].keys() == ddp[split].keys()
        for key, value in single[split].items():
            # Weights agree to ~1e-6; a map value crossing one of the 1000 score bins moves a metric slightly.
            assert ddp[split][key] == pytest.approx(value, abs=0.05), key
    weights = [
        read_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt")["state_dict"]
        for run in ("single", "ddp")
    ]
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, atol=1e-5, rtol=1e-4)


class NaNAfterTwoSteps(PoolingHeadMethod):
    """Returns a NaN loss from its third training step on."""

    def __init__(self, num_classes: int, **options: Any) -> None:
        super().__init__(num_classes, **options)
        self.steps = 0

    def training_loss(self, batch: Any) -> Any:
        output = super().training_loss(batch)
        self.steps += 1
        if self.steps > 2:
            output.total = output.total * float("nan")
        return output


def test_nan_loss_names_step_and_last_good_checkpoint(tmp_path: Path) -> None:
    config = load_config(
        None, [*TINY, f"output_dir={tmp_path}", "name=nan", f"method.name={__name__}:NaNAfterTwoSteps"]
    )
    with pytest.raises(NonFiniteLossError) as error:
        train(config)
    message = str(error.value)
    last = tmp_path / "nan" / "checkpoints" / "last.ckpt"
    assert "loss is nan at global step 2 (epoch 0, batch 2)" in message
    assert f"{last} (saved at global step 2)" in message
    assert read_checkpoint(last)["global_step"] == 2


def test_bad_evaluator_option_fails_before_training(tmp_path: Path) -> None:
    config = load_config(None, [f"output_dir={tmp_path}", "name=bad", "eval.no_such_option=1"])
    with pytest.raises(ValueError, match="eval: invalid evaluator options"):
        train(config)
    assert not (tmp_path / "bad" / "checkpoints").exists()
