"""A long-running child process in a process group of its own, stoppable with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


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
        """Start the component in a process group of its own (appending to its log)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
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
