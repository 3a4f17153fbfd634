"""A long-running child process in a process group of its own, stoppable with everything it started.

It is started through :func:`warpspeed.embedded.server.die_with_parent`: when the thread that
started it dies (the process owning the stack was killed), the kernel sends it SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from warpspeed.embedded.server import die_with_parent
from warpspeed.embedded.state import open_private_log

log = logging.getLogger(__name__)


@dataclass
class Component:
    """One Airflow component: its command line, log file and (while running) process."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        """Tell whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, env: dict[str, str]) -> None:
        """Start the component in a process group of its own (appending to its log, 0600).

        Call it from a thread that lives as long as the component should (see the module doc).
        """
        if self._log is not None:
            self._log.close()
        self._log = open_private_log(self.log_path)
        self.proc = subprocess.Popen(
            die_with_parent(self.argv, signal.SIGTERM), env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def descendants(self) -> list[int]:
        """Return the pids of the component's child processes (task runners, Spark)."""
        import psutil

        if not self.alive or self.proc is None:
            return []
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the component's whole process group (nothing if it has none)."""
        if self.proc is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the component and everything it started: SIGTERM, then SIGKILL after ``timeout``."""
        import psutil

        if self.proc is None:
            return
        children = self.descendants()
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.signal_group(signal.SIGKILL)  # stragglers left in the group
        for pid in children:  # children that started a session of their own
            with suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Revival:
    """Restart the components that exited on their own, after a pause that doubles each time.

    A :class:`~warpspeed.embedded.supervisor.Supervisor` calls it at every look (``add_check``),
    so what it starts lives as long as the supervisor's thread. A component someone else is
    restarting (``lock`` held) is left alone that round; once :attr:`stopped` is set, nothing is
    restarted any more.

    :param start: starts a component (in the calling thread).
    """

    components: Mapping[str, Component]
    start: Callable[[Component], None]
    lock: threading.Lock
    first_pause: float = 5.0
    max_pause: float = 60.0
    stopped: threading.Event = field(default_factory=threading.Event)
    events: list[str] = field(default_factory=list)
    _down_since: dict[str, float] = field(default_factory=dict)
    _restarts: dict[str, int] = field(default_factory=dict)

    def __call__(self) -> None:
        """Restart each component that has been down for its pause."""
        if self.stopped.is_set() or not self.lock.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            for name, component in self.components.items():
                if component.proc is None or component.alive:
                    self._down_since.pop(name, None)
                    continue
                since = self._down_since.setdefault(name, now)
                count = self._restarts.get(name, 0)
                if self.stopped.is_set() or now - since < min(self.max_pause, self.first_pause * 2**count):
                    continue
                code = component.proc.returncode
                component.stop(timeout=10)  # what the dead one left in its group goes with it
                self.start(component)
                self._restarts[name] = count + 1
                self._down_since.pop(name, None)
                self.events.append(f"{name} exited ({code}); restarted (restart {count + 1}); log {component.log_path}")
                log.warning("%s", self.events[-1])
        finally:
            self.lock.release()
