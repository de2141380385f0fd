"""End-to-end runs of ``wsol train`` on a tiny synthetic dataset (32 px, 32 training images, tiny backbone).

Same seed => identical metrics; SIGKILL anywhere (training step, validation, checkpoint write, final test) +
``--resume`` => the uninterrupted run; 2 DDP processes on gloo => the 1-process metrics; a NaN loss => a clear
error naming the step and last checkpoint. Runs go through the CLI in subprocesses (single-threaded, as DDP
children would be); the kill tests fork them from one process that has imported the engine.
"""

from __future__ import annotations

import csv
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import TINY, ForkServer, read_metrics, run_cli, train_args, train_command

from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.training.checkpoint import read_checkpoint
from wsol.training.config import load_config
from wsol.training.module import NonFiniteLossError
from wsol.training.run import train, train_from_cli
from wsol.training.run_folder import LOCK_FILE


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


def _validation_errors(run_dir: Path) -> list[tuple[int, float]]:
    """(epoch, val/error) of every validation logged in the CSV logs of all the run's parts."""
    rows = [
        row
        for path in sorted((run_dir / "logs").glob("csv*/metrics.csv"))
        for row in csv.DictReader(path.read_text().splitlines())
    ]
    return sorted((int(row["epoch"]), float(row["val/error"])) for row in rows if row.get("val/error"))


def test_resume_after_kills_anywhere_reaches_the_same_run(
    reference: Path, fork_server: ForkServer, tmp_path: Path
) -> None:
    """SIGKILL in a training step, inside validation, inside a checkpoint write (after moving the run folder)
    and inside the final test; each ``--resume`` continues, and the run ends exactly like the uninterrupted
    one: same validations, same selected checkpoint, same metrics."""
    first, moved = tmp_path / "a" / "killed", tmp_path / "b" / "killed"
    stages = [
        # kill point, run folder, last.ckpt's (epoch, batches done) after the kill
        (("training_step", 3), first, [0, 2]),
        (("validation_step", 1), first, [0, 3]),  # not [0, 4]: the epoch's validation must be redone
        (("last.ckpt", 2), moved, [1, 0]),  # the epoch-end file is written; killed in the next one
        (("test_step", 1), moved, [2, 0]),
    ]
    for index, (kill, run_dir, position) in enumerate(stages):
        if run_dir == moved and first.exists():
            moved.parent.mkdir()
            shutil.move(first, moved)  # later parts resume in another folder: paths are relative to it
        argv = train_args(tmp_path / "a", "killed") if index == 0 else ["train", "--resume", str(run_dir)]
        code, log = fork_server.run(argv, kill=kill)
        assert code == -signal.SIGKILL, f"{kill}: {log[-3000:]}"
        assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["wsol"]["train_position"] == position
        assert not (run_dir / "metrics.json").exists()
        temporaries = list((run_dir / "checkpoints").glob(".*.tmp-*"))
        assert len(temporaries) == (kill[0] == "last.ckpt"), temporaries  # a resume removes the stale one
    code, log = fork_server.run(["train", "--resume", moved.name], cwd=moved.parent)  # a relative path
    assert code == 0, log[-3000:]
    resumed, expected = read_metrics(moved), read_metrics(reference)
    assert _validation_errors(moved) == _validation_errors(reference)
    best = [read_checkpoint(run / "checkpoints" / "best.ckpt")["global_step"] for run in (moved, reference)]
    assert best[0] == best[1]
    assert (
        resumed["global_step"] == expected["global_step"] and resumed["checkpoint"] == expected["checkpoint"]
    )
    assert resumed["val"] == expected["val"] and resumed["test"] == expected["test"]
    assert not [p.name for p in (moved / "checkpoints").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("point", "position"), [(("training_step", 3), [0, 3]), (("validation_step", 1), [1, 0])]
)
def test_sigterm_exits_143_and_resume_reaches_the_same_run(
    reference: Path, fork_server: ForkServer, tmp_path: Path, point: tuple[str, int], position: list[int]
) -> None:
    """SIGTERM inside a training step: the step completes, last.ckpt keeps it (no step lost), the exit status
    is 143, not 0. Inside the epoch's (one-batch) validation: Lightning completes the epoch, selection and
    the epoch-end file included. Either way ``--resume`` ends exactly like the uninterrupted run."""
    code, log = fork_server.run(train_args(tmp_path, "stopped"), kill=(*point, "TERM"))
    assert code == 128 + signal.SIGTERM, log[-3000:]
    assert "stopped by SIGTERM" in log and "wsol train --resume" in log
    assert (
        read_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.ckpt")["wsol"]["train_position"]
        == position
    )
    assert not (tmp_path / "stopped" / "metrics.json").exists()
    code, log = fork_server.run(["train", "--resume", str(tmp_path / "stopped")])
    assert code == 0, log[-3000:]
    resumed, expected = read_metrics(tmp_path / "stopped"), read_metrics(reference)
    assert (
        resumed["global_step"] == expected["global_step"] and resumed["checkpoint"] == expected["checkpoint"]
    )
    assert resumed["val"] == expected["val"] and resumed["test"] == expected["test"]


def test_resume_after_early_stopping_only_evaluates(fork_server: ForkServer, tmp_path: Path) -> None:
    """Early stopping ended the run, the final test was killed: the resumed run trains no further epoch.

    A loader worker outlives the killed run by a few seconds; the run folder's lock must not pass to it.
    """
    # Frozen BatchNorm and a negligible lr: epoch 1 repeats epoch 0's val/error, patience 0 stops there.
    method = "method.name=engine_test_methods:FrozenBatchNormCAM"
    args = train_args(
        tmp_path,
        "stopped",
        method,
        "optim.lr=1e-12",
        "trainer.limit_train_batches=1",
        "trainer.max_epochs=4",
        "trainer.patience=0",
        "data.num_workers=1",
    )
    code, log = fork_server.run(args, kill=("test_step", 1))
    assert code == -signal.SIGKILL, log[-3000:]
    code, log = fork_server.run(["train", "--resume", str(tmp_path / "stopped"), method])
    assert code == 0, log[-3000:]
    metrics = read_metrics(tmp_path / "stopped")
    assert metrics["epochs_trained"] == 2 and metrics["global_step"] == 2


def _modification_times(run_dir: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.name != LOCK_FILE}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["trainer.max_epochs=1"],
            r"trainer\.max_epochs=1: .*last\.ckpt has already trained 2 epochs; .*>= 2",
        ),
        (["trainer.max_steps=5"], r"trainer\.max_steps=5: .*last\.ckpt has already trained 8 steps"),
        (
            ["data.synthetic.num_classes=3"],
            r"last\.ckpt: the run was trained with 4 classes but the dataset now has 3",
        ),
        (
            ["method.options.head=wgap"],
            r"last\.ckpt: the saved weights do not fit .*: missing method\.classifier\.head\.fc\.bias; ",
        ),
    ],
    ids=["max_epochs", "max_steps", "classes", "architecture"],
)
def test_resume_refuses_what_cannot_continue_the_run(
    reference: Path, tmp_path: Path, overrides: list[str], message: str
) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(reference, run_dir)
    before = _modification_times(run_dir)
    with pytest.raises(ValueError, match=message):
        train_from_cli(None, overrides, run_dir)
    assert _modification_times(run_dir) == before


def test_resume_with_a_corrupt_saved_config_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: 0\noptim: {lr: 0.1\n")
    with pytest.raises(ValueError, match=r"config\.yaml:3:1: not valid YAML"):
        train_from_cli(None, [], tmp_path)


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


def test_devices_the_machine_lacks_are_a_config_error(tmp_path: Path) -> None:
    config = load_config(None, [*TINY, f"output_dir={tmp_path}", "name=nodevice", "trainer.devices=0"])
    with pytest.raises(ValueError, match=r"^trainer: `Trainer\(devices=0\)` value is not a valid input"):
        train(config)
    assert not (tmp_path / "nodevice" / "checkpoints").exists()


def test_bad_evaluator_option_fails_before_training(tmp_path: Path) -> None:
    config = load_config(None, [f"output_dir={tmp_path}", "name=bad", "eval.no_such_option=1"])
    with pytest.raises(ValueError, match="eval: invalid evaluator options"):
        train(config)
    assert not (tmp_path / "bad" / "checkpoints").exists()
