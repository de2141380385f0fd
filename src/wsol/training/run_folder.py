"""The run folder of ``wsol train``: unique default names, an exclusive lock, stale temporary files.

A run holds an exclusive POSIX record lock (``lockf``) on ``RUN/.lock``, which records its pid, from start to
end, so a second ``wsol train`` or ``--resume`` on the same folder refuses to start instead of interleaving
checkpoints and logs. The kernel releases the lock when the holder dies, and forked children (data-loader
workers, which may outlive a killed run by seconds) do not share it, as they would share a ``flock``: a killed
run never leaves its folder locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


class RunFolderInUseError(ValueError):
    """Another process holds the run folder's lock."""


@contextlib.contextmanager
def locked_run_folder(run_dir: Path) -> Iterator[Path]:
    """Create ``run_dir`` if needed, hold its lock while the block runs; raise if another process holds it.

    Once locked, the temporary files that a killed run's atomic writes left behind are deleted.
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise ValueError(f"{run_dir}: cannot create the run folder or its lock ({err.strerror})") from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunFolderInUseError(
                f"{run_dir}: the run folder is in use by another `wsol train` (pid {holder}); "
                "wait for it to end or choose another name"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporary_files(run_dir)
        yield run_dir
    finally:
        os.close(fd)  # releases the lock


def new_run_folder(output_dir: Path, stem: str) -> Path:
    """Create and return ``output_dir/stem`` or, if taken, the first free ``stem-2``, ``stem-3``, ...

    ``mkdir`` fails on an existing folder, so runs started in the same second never share a folder.
    """
    number = 1
    while True:
        candidate = Path(output_dir) / (stem if number == 1 else f"{stem}-{number}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
        except OSError as err:
            raise ValueError(f"output_dir: cannot create {candidate} ({err.strerror})") from None


def remove_stale_temporary_files(run_dir: Path) -> list[Path]:
    """Delete the ``.NAME.tmp-*`` files killed atomic writes left anywhere in ``run_dir`` (lock held)."""
    stale = sorted(path for path in Path(run_dir).rglob(".*.tmp-*") if path.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
