"""Shared fixtures of the dataset-layer tests: one tiny synthetic dataset per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsol.data.synth import SynthConfig, generate_synthetic

TINY = SynthConfig(preset="natural-multi", image_size=64, train=8, val=4, test=4, seed=3)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("synth") / "tiny", TINY)


@pytest.fixture(scope="session")
def tiny_config() -> SynthConfig:
    return TINY
