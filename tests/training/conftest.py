"""Shared fixture of the engine tests: one tiny uninterrupted ``wsol train`` run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import ForkServer, run_cli, train_command


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run (2 epochs x 4 steps), shared by the determinism, resume and inference tests."""
    out = tmp_path_factory.mktemp("runs")
    run_cli(train_command(out, "reference"), out)
    return out / "reference"


@pytest.fixture(scope="session")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """Runs ``wsol`` commands (optionally killed at a chosen point) without re-importing torch each time."""
    server = ForkServer(tmp_path_factory.mktemp("fork-server-logs"))
    yield server
    server.close()
