"""Helpers of the engine tests: tiny ``wsol train`` runs through the CLI in single-threaded subprocesses."""

from __future__ import annotations

import json
import os
import select
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
    "data.num_workers=0",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
    "trainer.log_every_n_steps=1",
    "trainer.checkpoint_every_n_steps=1",
    "eval.cam_curve_interval=0.01",
    "optim.lr=0.05",
]
ONE_BATCH = [
    "data.batch_size=4",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.progress_bar=false",
]
"""One training, validation and test batch of 4: the overrides of a run that checks that a preset runs."""


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = env.get("PYTHONPATH", "").split(os.pathsep)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        # Absolute: the runs start in temporary folders, where PYTHONPATH=src would find nothing.
        PYTHONPATH=os.pathsep.join([str(HERE), *(os.path.abspath(p) for p in paths if p)]),
    )
    return env


def train_command(out: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wsol.cli.main", *train_args(out, name, *extra)]


def train_args(out: Path, name: str, *extra: str) -> list[str]:
    """``wsol`` arguments of a tiny training run named ``name`` under ``out``."""
    return ["train", *TINY, f"output_dir={out}", f"name={name}", *extra]


def run_cli(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


class ForkServer:
    """Runs ``wsol`` commands in children forked from one ``cli_fork_server.py`` process (see there)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.count = 0
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "cli_fork_server.py")],
            env=cli_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self,
        argv: list[str],
        kill: tuple[str, int] | tuple[str, int, str] | None = None,
        cwd: Path | None = None,
    ) -> tuple[int, str]:
        """``wsol ARGV`` in ``cwd``, killed at ``kill`` (POINT, N[, "TERM"]) if given: return code, output."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.count += 1
        log = self.logs / f"run{self.count}.log"
        request = {"argv": argv, "cwd": str(cwd or self.logs), "log": str(log), "kill": kill}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 900)
        assert ready, f"wsol {' '.join(argv)}: no answer in 900 s"
        return int(self.process.stdout.readline()), log.read_text()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)
