"""The provenance record stored with every metrics file: what produced a number, so it can be traced.

Library version and git commit, the run's config and seed, the dataset's name and a SHA-256 of its metadata
(``dataset.json``, ``classes.txt`` and the split's metadata files — not the images), the evaluator settings,
and the machine (CPU, GPU, Python, torch, numpy).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsol.data.format import CLASSES_FILE, DATASET_FILE, METADATA_DIR, read_dataset_info
from wsol.evaluation.evaluator import EvaluatorConfig


def library_version() -> dict[str, Any]:
    """``{"version", "commit", "dirty"}``; commit/dirty are None outside a git checkout of the sources."""
    try:
        version = metadata.version("wsol")
    except metadata.PackageNotFoundError:
        version = None
    source = Path(__file__).resolve().parent
    commit = dirty = None
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            commit = head.stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no", "--", "."],
                capture_output=True,
                text=True,
                timeout=10,
            )
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": version, "commit": commit, "dirty": dirty}


def metadata_files(data: Path, split: str | None) -> list[Path]:
    """The files that define ``split`` of the dataset (or raw metadata split folder) ``data``."""
    data = Path(data)
    if (data / DATASET_FILE).is_file():
        files = [data / DATASET_FILE, data / CLASSES_FILE]
        split_dir = data / METADATA_DIR / split if split else None
    else:
        files, split_dir = [], data
    if split_dir is not None and split_dir.is_dir():
        files += sorted(p for p in split_dir.iterdir() if p.is_file())
    return [p for p in files if p.is_file()]


def dataset_record(data: Path, split: str | None) -> dict[str, Any]:
    """Name, location, split and the SHA-256 over the split's metadata files (names and contents)."""
    data = Path(data)
    digest = hashlib.sha256()
    files = metadata_files(data, split)
    for path in files:
        digest.update(path.relative_to(data).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    name = read_dataset_info(data).name if (data / DATASET_FILE).is_file() else data.name
    return {
        "name": name,
        "root": str(data.absolute()),
        "split": split,
        "metadata_sha256": digest.hexdigest() if files else None,
        "metadata_files": [p.relative_to(data).as_posix() for p in files],
    }


def machine_record() -> dict[str, Any]:
    """Host, CPU, GPU and the versions of Python, torch and numpy."""
    cuda = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def evaluator_record(config: EvaluatorConfig) -> dict[str, Any]:
    """The evaluator settings, with the protocol named (``wsolevaluation`` parity or ``default``)."""
    return {"protocol": config.parity or "default", **asdict(config)}


def provenance_record(
    *,
    evaluator: EvaluatorConfig,
    data: Path,
    split: str | None,
    source: Mapping[str, Any],
    label: str | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to trace an evaluation; ``source`` names what was evaluated (checkpoint or maps)."""
    seed = run_config.get("seed") if run_config else None
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "label": label,
        "seed": seed,
        "wsol": library_version(),
        "source": dict(source),
        "dataset": dataset_record(data, split),
        "evaluator": evaluator_record(evaluator),
        "run_config": dict(run_config) if run_config else None,
        "machine": machine_record(),
    }
