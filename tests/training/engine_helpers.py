"""Helpers of the engine tests: tiny ``wsol train`` runs through the CLI in single-threaded subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
    )
    return env


def train_command(out: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wsol.cli.main",
        "train",
        *TINY,
        f"output_dir={out}",
        f"name={name}",
        *extra,
    ]


def run_cli(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())
