"""Test-wide settings: keep every library's caches inside a temporary folder, make runs deterministic."""

from __future__ import annotations

import os
import tempfile

_CACHE_ROOT = tempfile.mkdtemp(prefix="wsol-test-cache-")
for _variable in (
    "MPLCONFIGDIR",
    "TORCH_HOME",
    "HF_HOME",
    "XDG_CACHE_HOME",
    "WSOL_CACHE_DIR",
    "NUMBA_CACHE_DIR",
):
    os.environ.setdefault(_variable, os.path.join(_CACHE_ROOT, _variable.lower()))
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)
