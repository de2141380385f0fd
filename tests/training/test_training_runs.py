"""End-to-end runs of ``wsol train`` on a tiny synthetic dataset (32 px, 32 training images, tiny backbone).

Same seed => identical metrics; SIGKILL mid-epoch + ``--resume`` => the uninterrupted run's metrics; 2 DDP
processes on gloo => the 1-process metrics; a NaN loss => a clear error naming the step and last checkpoint.
Runs go through the CLI in subprocesses (single-threaded, as DDP children would be).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.training.checkpoint import read_checkpoint
from wsol.training.config import load_config
from wsol.training.module import NonFiniteLossError
from wsol.training.run import train

HERE = Path(__file__).resolve().parent
TINY = [
    "data.synthetic.train=32",
    "data.synthetic.val=8",
    "data.synthetic.test=8",
    "data.synthetic.image_size=32",
    "data.batch_size=8",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
    "trainer.log_every_n_steps=1",
    "trainer.checkpoint_every_n_steps=1",
    "eval.cam_curve_interval=0.01",
    "optim.lr=0.05",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]))
    return env


def _command(out: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wsol.cli.main", "train", *TINY, f"output_dir={out}", f"name={name}", *extra]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run, shared by the determinism, resume and inference tests."""
    out = tmp_path_factory.mktemp("runs")
    _run(_command(out, "reference"), out)
    return out / "reference"


def test_run_folder_and_safe_checkpoints(reference: Path) -> None:
    metrics = _metrics(reference)
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
    _run(_command(tmp_path, "again"), tmp_path)
    first, second = _metrics(reference), _metrics(tmp_path / "again")
    assert first["val"] == second["val"] and first["test"] == second["test"]


def test_resume_after_sigkill_reaches_the_same_metrics(reference: Path, tmp_path: Path) -> None:
    command = _command(tmp_path, "killed", "trainer.max_epochs=2")
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    _run([sys.executable, "-m", "wsol.cli.main", "train", "--resume", str(tmp_path / "killed")], tmp_path)
    resumed, expected = _metrics(tmp_path / "killed"), _metrics(reference)
    assert resumed["global_step"] == expected["global_step"]
    assert resumed["val"] == expected["val"] and resumed["test"] == expected["test"]


def test_ddp_two_processes_match_one_process(tmp_path: Path) -> None:
    method = "method.name=engine_test_methods:FrozenBatchNormCAM"
    _run(_command(tmp_path, "single", method, "data.batch_size=8"), tmp_path)
    _run(
        _command(
            tmp_path, "ddp", method, "data.batch_size=4", "trainer.strategy=ddp", "trainer.devices=2",
            "data.eval_batch_size=3",
        ),
        tmp_path,
    )
    single, ddp = _metrics(tmp_path / "single"), _metrics(tmp_path / "ddp")
    assert single["global_step"] == ddp["global_step"] == 8
    for split in ("val", "test"):
        assert single[split].keys() == ddp[split].keys()
        for key, value in single[split].items():
            # Weights agree to ~1e-6; a map value crossing one of the 1000 score bins moves a metric slightly.
            assert ddp[split][key] == pytest.approx(value, abs=0.05), key
    weights = [read_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt")["state_dict"] for run in ("single", "ddp")]
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
    config = load_config(None, [*TINY, f"output_dir={tmp_path}", "name=nan", f"method.name={__name__}:NaNAfterTwoSteps"])
    with pytest.raises(NonFiniteLossError) as error:
        train(config)
    message = str(error.value)
    last = tmp_path / "nan" / "checkpoints" / "last.ckpt"
    assert "loss is nan at global step 2 (epoch 0, batch 2)" in message
    assert f"{last} (saved at global step 2)" in message
    assert read_checkpoint(last)["global_step"] == 2
