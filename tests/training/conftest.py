"""Shared fixture of the engine tests: one tiny uninterrupted ``wsol train`` run."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import run_cli, train_command


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run (2 epochs x 4 steps), shared by the determinism, resume and inference tests."""
    out = tmp_path_factory.mktemp("runs")
    run_cli(train_command(out, "reference"), out)
    return out / "reference"
