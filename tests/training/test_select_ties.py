"""Model selection on tied validation values: earliest (Lightning) or latest (min-max reference's ``<=``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from engine_helpers import read_metrics, run_cli, train_command

from wsol.training.checkpoint import BestCheckpoint
from wsol.training.config import load_config

TRAINER = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda decision: decision))


@pytest.mark.parametrize(
    ("ties", "mode", "current", "replaces"),
    [
        ("earliest", "min", 0.5, False),
        ("latest", "min", 0.5, True),
        ("latest", "min", 0.6, False),
        ("latest", "min", 0.4, True),
        ("earliest", "max", 0.5, False),
        ("latest", "max", 0.5, True),
        ("latest", "max", 0.4, False),
    ],
)
def test_tie_rule(tmp_path: Path, ties: str, mode: str, current: float, replaces: bool) -> None:
    callback = BestCheckpoint(dirpath=tmp_path, monitor="val/error", mode=mode, save_top_k=1, ties=ties)
    assert callback.check_monitor_top_k(TRAINER, torch.tensor(0.5))  # nothing saved yet
    callback.best_k_models = {"best.ckpt": torch.tensor(0.5)}
    callback.kth_best_model_path = "best.ckpt"
    assert callback.check_monitor_top_k(TRAINER, torch.tensor(current)) is replaces


def test_bad_tie_rule_is_named() -> None:
    with pytest.raises(ValueError, match="ties"):
        BestCheckpoint(ties="first")
    with pytest.raises(ValueError, match="trainer.select_ties"):
        load_config(None, ["trainer.select_ties=first"])


def test_latest_of_tied_epochs_is_selected_and_reported(tmp_path: Path) -> None:
    # A negligible learning rate and frozen BatchNorm: every epoch has the same validation error (all tie).
    run_cli(
        train_command(
            tmp_path,
            "ties",
            "method.name=engine_test_methods:FrozenBatchNormCAM",
            "optim.lr=1e-12",
            "trainer.limit_train_batches=1",
            "trainer.select_ties=latest",
        ),
        cwd=tmp_path,
    )
    metrics = read_metrics(tmp_path / "ties")
    assert metrics["selected_epoch"] == 1  # of epochs 0 and 1 (Lightning's rule would keep 0)
