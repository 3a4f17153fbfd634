"""The rehearsal's processes: each in a session of its own, dying with its starter, recorded until reaped.

Every process the rehearsal starts (the control plane, the step runner, the Spark master and
workers, each step's ``spark-submit`` or ``bash``) goes through :func:`spawn`:

* ``setpriv --pdeathsig=TERM`` (util-linux; it sets the flag and ``exec``s) makes the kernel send
  SIGTERM to it when the thread that started it dies, a SIGKILLed parent included;
* ``start_new_session`` gives it a process group of its own, which :func:`stop_group` signals, so
  a driver's Python child goes with its JVM;
* its group id is appended to a registry file and its environment carries :data:`MARK` = the
  registry folder; :func:`reap_registered` kills every recorded group whose processes still carry
  that mark (a recycled group id is left alone), the groups a crashed predecessor left (the
  prototype found a ``spark-submit`` alive 27 minutes after its master was gone);
  :func:`marked_processes` finds anything carrying the mark, for a last check.

The embedded servers' own helper (``warpspeed.embedded.server.die_with_parent``, being written for
the embedded stack) does the ``setpriv`` part the same way; this module moves onto it once it lands.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

REGISTRY = "pgids"
MARK = "WARPSPEED_REHEARSAL_REGISTRY"
"""Environment variable every rehearsal process carries: the folder of the registry that recorded it."""


@functools.cache
def _setpriv() -> str | None:
    found = shutil.which("setpriv")
    if found is None:
        return None
    probe = subprocess.run([found, "--pdeathsig=TERM", "--", "true"], capture_output=True, check=False)
    return found if probe.returncode == 0 else None


def dying_with_parent(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` prefixed so that it gets SIGTERM when its starting thread dies (as is without setpriv)."""
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig=TERM", "--", *argv] if setpriv else list(argv)


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], log: Path | IO[bytes], registry: Path | None,
    cwd: Path | None = None, stderr: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own that dies with this thread; record its group in ``registry``.

    :param log: file (appended) or open binary stream for stdout (and stderr unless ``stderr``).
    :param registry: the folder holding the registry file (None: not recorded).
    """
    marked = dict(env) | ({MARK: str(registry)} if registry is not None else {})
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab")) if isinstance(log, Path) else log
        err = files.enter_context(stderr.open("ab")) if stderr is not None else subprocess.STDOUT
        proc = subprocess.Popen(
            dying_with_parent(argv), env=marked, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if registry is not None:
        registry.mkdir(parents=True, exist_ok=True)
        with (registry / REGISTRY).open("a") as fh:
            fh.write(f"{proc.pid}\n")
    return proc


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; tell whether it existed."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a process and its group: SIGTERM, SIGKILL after ``timeout``, then SIGKILL the stragglers."""
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    signal_group(proc.pid, signal.SIGKILL)


def marked_processes(registry: Path) -> dict[int, int]:
    """Return ``{pid: process group}`` of the live processes whose environment carries ``registry``'s mark."""
    mark = f"{MARK}={registry}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if mark not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            found[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
    return found


def reap_registered(registry: Path, grace: float = 10.0) -> list[int]:
    """Kill the recorded process groups whose processes still carry ``registry``'s mark; empty the record.

    :return: the groups that were signalled.
    """
    path = registry / REGISTRY
    recorded = {int(line) for line in path.read_text().split() if line.isdigit()} if path.exists() else set()
    ours = sorted(recorded & set(marked_processes(registry).values()))
    for pgid in ours:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while ours and time.monotonic() < deadline and set(ours) & set(marked_processes(registry).values()):
        time.sleep(0.2)
    for pgid in ours:
        signal_group(pgid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return ours
