"""One embedded server process: how it starts, where it listens, when it is ready, how it stops.

Every server (PostgreSQL, the Iceberg REST catalog, ElasticMQ, and any JVM server added later)
is a :class:`ServerProcess`: a command line, a fixed loopback port, a log file, a readiness
check and the signals that stop it. It is started as

    setpriv --pdeathsig=<SIG> -- [unshare ... --] <server>

``setpriv`` (and ``unshare`` without ``--fork``) set their flag and *exec*, so the process we
hold is the server itself, and the kernel sends it ``<SIG>`` when the thread that started it
dies, a SIGKILLed pytest or ``make airflow`` included. Because the signal follows the starting
*thread*, servers are started by a thread that lives as long as the stack
(:class:`warpspeed.embedded.supervisor.Supervisor`), never by a short-lived worker thread.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from warpspeed.embedded.state import open_private_log, port_held_by, port_is_free
from warpspeed.exceptions import WarpSpeedError

PORT_CHECK_S = 1.0
"""How often a starting server that is not ready yet is checked for another program on its port."""

log = logging.getLogger(__name__)


class ServerError(WarpSpeedError):
    """An embedded server did not start, or stopped answering."""


class PortTakenError(ServerError):
    """Another program listens on the port a server was to use (it took it between our check and its bind)."""


@functools.cache
def _setpriv() -> str | None:
    """Return ``setpriv`` if it can set the parent-death signal (util-linux 2.33+), else None."""
    found = shutil.which("setpriv")
    if found is None:
        return None
    try:
        probe = subprocess.run([found, "--pdeathsig=TERM", "--", "true"], capture_output=True, timeout=10, check=False)
        ok = probe.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return found if ok else None


def die_with_parent(argv: list[str], signum: int = signal.SIGTERM) -> list[str]:
    """Return ``argv`` prefixed so that the kernel sends it ``signum`` when its starting thread dies.

    Without a ``setpriv`` that knows ``--pdeathsig`` (not Linux, or util-linux older than 2.33)
    ``argv`` is returned unchanged and a warning says servers may outlive a killed parent.
    """
    setpriv = _setpriv()
    if setpriv is None:
        log.warning("setpriv --pdeathsig is unavailable: embedded servers may outlive a killed parent")
        return argv
    return [setpriv, f"--pdeathsig={signal.Signals(signum).name.removeprefix('SIG')}", "--", *argv]


def log_tail(path: Path, chars: int = 3000) -> str:
    """Return the end of a server's log (for error messages)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass(eq=False)
class ServerProcess:
    """One embedded server on a fixed loopback port.

    :param name: what logs and errors call it (``postgres``, ``rest-catalog``, ``sqs``...).
    :param command: returns the server's command line (called at every start).
    :param port: the port it listens on; the same for every restart.
    :param log_path: its output (0600, appended across restarts).
    :param ready: tells whether it serves requests (e.g. a login works, an HTTP request gets an answer).
    :param env: environment added to this process's.
    :param death_signal: what the kernel sends it when its starting thread dies.
    :param stop_signal: what :meth:`stop` sends (PostgreSQL: SIGINT, a fast shutdown).
    :param ready_timeout: seconds a start may take.
    :param identity: a string its command line or environment contains, unique to its state
        folder (how a test finds servers a killed process left behind).
    :param after_exit: called with the exit code once a run has ended (stopped here, or found
        dead at the next start; None if unknown).
    """

    name: str
    command: Callable[[], list[str]]
    port: int
    log_path: Path
    ready: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    death_signal: int = signal.SIGTERM
    stop_signal: int = signal.SIGTERM
    ready_timeout: float = 180.0
    identity: str = ""
    after_exit: Callable[[int | None], None] | None = field(default=None, repr=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _reported: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    generation: int = 0
    """How many times it became ready (a restart adds one)."""

    @property
    def alive(self) -> bool:
        """Tell whether the process runs (reaps it if it exited, so no zombie holds its pid)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Return the server's pid (the server itself: the launch chain execs)."""
        return self.proc.pid if self.proc is not None else None

    def spawn(self) -> None:
        """Start the process (without waiting for it to be ready)."""
        if self.alive:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        self._ended()
        with open_private_log(self.log_path) as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name} on port {self.port}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                die_with_parent(self.command(), self.death_signal), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=dict(os.environ | dict(self.env)), cwd="/",
                start_new_session=True, umask=0o077,
            )

    def wait_ready(self, cancelled: threading.Event | None = None) -> None:
        """Wait until :attr:`ready` says so; raise :class:`ServerError` if it exits or takes too long."""
        deadline = time.monotonic() + self.ready_timeout
        next_port_check = time.monotonic() + PORT_CHECK_S
        while not self.ready():
            if self.proc is None or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc is not None else None
                if not port_is_free(self.port):
                    raise PortTakenError(f"{self.name} exited ({code}): another program listens on port {self.port}")
                raise ServerError(f"{self.name} exited ({code}) before it was ready; log {self.log_path}:\n"
                                  f"{log_tail(self.log_path)}")
            if time.monotonic() >= next_port_check:
                next_port_check = time.monotonic() + PORT_CHECK_S
                # ElasticMQ logs its failed bind and runs on, never ready: do not wait out the timeout
                self._refuse_a_port_held_by_another(
                    f"{self.name} did not bind port {self.port}: another program listens there")
            if time.monotonic() > deadline or (cancelled is not None and cancelled.is_set()):
                self.stop()
                raise ServerError(f"{self.name} not ready after {self.ready_timeout:.0f} s; log {self.log_path}:\n"
                                  f"{log_tail(self.log_path)}")
            time.sleep(0.2)
        # what answered may be another server (one that took the port while ours started): not ours
        self._refuse_a_port_held_by_another(f"{self.name}: another program answers on port {self.port}")
        self.generation += 1

    def _refuse_a_port_held_by_another(self, message: str) -> None:
        """Stop this server and raise :class:`PortTakenError` if another process listens on its port."""
        if self.pid is not None and port_held_by(self.port, self.pid) is False:
            self.stop()
            raise PortTakenError(message)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop it with :attr:`stop_signal`; SIGKILL it if it is still there after ``timeout`` seconds."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self._ended()
            return
        proc.send_signal(self.stop_signal)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop in %.0f s; killing it", self.name, proc.pid, timeout)
            proc.kill()
            proc.wait(timeout=30)
        self._ended()

    def _ended(self) -> None:
        """Call :attr:`after_exit` once for the run that has ended (nothing while it runs)."""
        proc = self.proc
        if proc is None or proc.poll() is None or self._reported is proc:
            return
        self._reported = proc
        if self.after_exit is not None:
            self.after_exit(proc.returncode)

    def kill(self) -> None:
        """SIGKILL the server (as a crash would); a supervisor then restarts it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
