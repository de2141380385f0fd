"""Test-wide settings: keep every library's caches inside a temporary folder, make runs deterministic."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_CACHE_ROOT = tempfile.mkdtemp(prefix="wsol-test-cache-")
atexit.register(shutil.rmtree, _CACHE_ROOT, ignore_errors=True)  # subprocesses have ended by then
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


def _nested_close(got: object, expected: object, tolerance: dict[str, float]) -> None:
    """``got == expected`` through dicts and lists, floats up to ``pytest.approx(**tolerance)``."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys()
        for key in expected:
            _nested_close(got[key], expected[key], tolerance)
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            _nested_close(a, b, tolerance)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, **tolerance)
    else:
        assert got == expected


@pytest.fixture
def assert_nested_close():
    """``assert_nested_close(got, expected, abs=…, rel=…)``: nested results equal, floats approximately."""
    return lambda got, expected, **tolerance: _nested_close(got, expected, tolerance)


@pytest.fixture
def hook_count():
    """``hook_count(model)``: forward, forward-pre, backward and backward-pre hooks left on ``model``."""

    def count(model: torch.nn.Module) -> int:
        return sum(
            len(m._forward_hooks)
            + len(m._forward_pre_hooks)
            + len(m._backward_hooks)
            + len(m._backward_pre_hooks)
            for m in model.modules()
        )

    return count
