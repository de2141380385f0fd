"""Fork server of the kill-and-resume tests: imports the engine once, runs each ``wsol`` command in a child.

Importing torch and Lightning takes most of a tiny run's time; a child forked from this process (which has
only imported them) starts like a fresh interpreter without paying for it again. Protocol, one JSON line per
request on stdin: ``{"argv": [...], "cwd": FOLDER, "log": PATH, "kill": [POINT, N] or null}``; one line back
per request: the child's return code (``-9``: killed by SIGKILL). The child runs in ``cwd``, writes its stdout
and stderr to ``log`` and kills itself at the N-th call of POINT: ``training_step``, ``validation_step`` or
``test_step`` (before that hook of ``WSOLLightningModule`` runs) or a checkpoint file name such as
``last.ckpt`` (its N-th write, once the data are in the temporary sibling and before the rename). A hook kill
``[POINT, N, "TERM"]`` sends SIGTERM instead (the run goes on to Lightning's next stopping point).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsol.cli.main import main
from wsol.training.checkpoint import AtomicCheckpointIO
from wsol.training.module import WSOLLightningModule


def _die(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _on_nth_call(n: int, action: Callable[[], None]) -> Callable[[], None]:
    calls = 0

    def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            action()

    return tick


def _kill_in_hook(name: str, n: int, action: Callable[[], None] = _die) -> None:
    original = getattr(WSOLLightningModule, name)
    tick = _on_nth_call(n, action)

    def hooked(self: WSOLLightningModule, *args: Any, **kwargs: Any) -> Any:
        tick()
        return original(self, *args, **kwargs)

    setattr(WSOLLightningModule, name, hooked)


def _kill_in_write(file_name: str, n: int) -> None:
    original = AtomicCheckpointIO.save_checkpoint

    def arm() -> None:
        os.fsync = _die  # called once the temporary file is written, before os.replace

    tick = _on_nth_call(n, arm)

    def save(self: AtomicCheckpointIO, checkpoint: dict[str, Any], path: Any, **kwargs: Any) -> None:
        if Path(path).name == file_name:
            tick()
        original(self, checkpoint, path, **kwargs)

    AtomicCheckpointIO.save_checkpoint = save  # type: ignore[method-assign]


def _child(request: dict[str, Any]) -> None:
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        if request["kill"]:
            point, n, *how = request["kill"]
            if point.endswith(".ckpt"):
                _kill_in_write(point, int(n))
            else:
                _kill_in_hook(point, int(n), _terminate if how == ["TERM"] else _die)
        code = main(request["argv"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _child(json.loads(line))
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
