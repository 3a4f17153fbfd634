"""Stop the warm Spark engines a pytest session started when that pytest dies, even by ``kill -9``.

Every server the tests start runs under ``setpriv --pdeathsig`` and dies with its parent; the
warm engine cannot (it is shared by the processes that score, so it detaches and leads a session
of its own). The session starts this watchdog the same way: when pytest dies the kernel sends it
SIGTERM, and it ends the process group of every engine whose discovery file
(``<home>/run/spark-engine.json``) lies under the session's base temporary folder. It also
watches its standard input and its parent pid, in case the signal does not come.

``python tests/reaper.py BASETEMP`` (it imports only :mod:`warpspeed.embedded.daemon`, stdlib underneath).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

from warpspeed.embedded.daemon import alive


def engine_pids(basetemp: Path) -> list[int]:
    """Return the pids the engine discovery files under ``basetemp`` name."""
    pids = []
    for path in basetemp.glob("**/run/spark-engine.json"):
        try:
            pids.append(int(json.loads(path.read_text())["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return pids


def end_groups(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM each process group, then SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                continue
        deadline = time.monotonic() + grace
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)


class ParentDied(Exception):
    """The kernel's parent-death signal arrived."""


def _parent_died(signum: int, frame: object) -> None:
    raise ParentDied  # a handler that returns would let the read go on (PEP 475)


def main(basetemp: str) -> None:
    """Wait for the parent's death, then end its engines.

    Three signs, whichever comes first: the kernel's SIGTERM (``setpriv --pdeathsig``), standard input
    closed, or this process re-parented (checked every second: a child that inherited the pipe keeps
    it open, and a loaded machine is no reason to wait).
    """
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _parent_died)
    with contextlib.suppress(ParentDied, OSError):
        while os.getppid() == parent:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
            if ready and not os.read(sys.stdin.fileno(), 4096):
                break
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # another of the signs may still come
    end_groups(engine_pids(Path(basetemp)))


if __name__ == "__main__":
    main(sys.argv[1])
