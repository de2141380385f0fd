"""Atomic file-system writes shared by every layer: nothing half-written survives a crash."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

OWNER_FILE = ".wsol-owner"
"""Inside every temporary folder of :func:`atomic_directory`: the writing process (host and pid)."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``.NAME.tmp-*`` siblings of ``target`` left by an :func:`atomic_directory` that was killed.

    Only folders holding this tool's owner file, written on this host by a process that no longer runs, are
    removed: a folder of another tool, of another machine or of a run still in progress is left alone.
    """
    target = Path(target).absolute()
    removed = []
    for candidate in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            owner = json.loads((candidate / OWNER_FILE).read_text(encoding="utf-8"))
            stale = owner["host"] == socket.gethostname() and not _process_alive(int(owner["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if stale and candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_directory(target: Path, *, check: Callable[[], object] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``target`` in one rename.

    On an exception the temporary folder is removed and an existing ``target`` is left untouched. Temporary
    folders of killed earlier writes to ``target`` are removed first (:func:`remove_stale_temporaries`).
    ``check`` runs again just before the swap (e.g. that ``target`` still holds nothing but what may be
    replaced: a long write leaves time for files to appear); when it raises, nothing is replaced.
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    owner = tmp / OWNER_FILE
    try:
        owner.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}), encoding="utf-8")
        yield tmp
        if check is not None:
            check()
        owner.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = None
    if target.exists():
        backup = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, backup)
    os.replace(tmp, target)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file through a temporary sibling and ``os.replace`` (no half-written file on a crash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


_ZIP_MAGIC = b"PK\x03\x04"


def load_tensors(path: Path, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)``: only tensors and plain containers, never code from the file.

    Any failure becomes a ``ValueError`` that names the file and says what was expected (a text or image file
    passed as a checkpoint is described by its first bytes, not by an unpickler's opcode).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected a PyTorch checkpoint)")
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(b"\x80"):
        kind = "an empty file" if not head else f"a file that starts with {head!r}"
        raise ValueError(f"{path}: not a PyTorch checkpoint (a zip archive from torch.save); got {kind}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch/pickle raise many types on foreign or damaged files
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(err))
        reason = (
            f"it holds a Python object ({unsafe.group(1)}); refused, as loading it could run code"
            if unsafe
            else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        )
        raise ValueError(
            f"{path}: not a readable checkpoint (a PyTorch file of tensors and plain containers is "
            f"expected): {reason}"
        ) from None
