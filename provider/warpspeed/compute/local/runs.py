"""One running local job, on the warm Spark engine or as a ``spark-submit`` process.

Both kinds write the job's output to ``<home>/logs/<job>.log``, forward its ``WARPSPEED_``
progress lines to this process's log (the Airflow task log), and end in a
:class:`~warpspeed.compute.base.StepStatus` whose failure reason follows one rule
(:func:`failure_reason`).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from warpspeed.compute.base import StepStatus
from warpspeed.compute.local.engine import ACTIVE_STATES, EngineHandle
from warpspeed.exceptions import ComputeError

log = logging.getLogger(__name__)
TAIL_LINES = 30


def failure_reason(tail: Iterable[str], returncode: int | None) -> str:
    """Return why a job failed: its last line naming an error or exception, else its exit code."""
    return next((t for t in reversed(list(tail)) if "Error" in t or "Exception" in t), f"exit {returncode}")


class LocalRun:
    """A job started here; :meth:`poll` returns its final status once it has ended."""

    step_id: str
    name: str
    log_path: Path
    started: float

    def poll(self) -> StepStatus | None:
        """Return the final status, or None while the job runs."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop the job."""
        raise NotImplementedError

    def _status(self, state: str, returncode: int | None, tail: Iterable[str], seconds: float) -> StepStatus:
        reason = None if state == "COMPLETED" else failure_reason(tail, returncode)
        if state == "COMPLETED":
            log.info("%s succeeded in %.1f s", self.name, seconds)
        else:
            log.error("%s %s after %.1f s: %s\n%s", self.name, state.lower(), seconds, reason, "\n".join(tail))
        return StepStatus(self.step_id, self.name, state, reason, log_file=self.log_path.as_uri(),
                          seconds=round(seconds, 3))


class SubmitRun(LocalRun):
    """A ``spark-submit`` process; a thread copies its output to the log and forwards progress lines."""

    def __init__(self, step_id: str, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.step_id, self.name, self.log_path = step_id, name, log_path
        self.started = time.monotonic()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.reader = threading.Thread(target=self._copy, name=f"log-{name}", daemon=True)
        self.reader.start()

    def _copy(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log_file:
            for line in self.proc.stdout:
                log_file.write(line)
                self.tail.append(line.rstrip())
                if line.startswith("WARPSPEED_"):
                    log.info("%s", line.rstrip())

    def poll(self) -> StepStatus | None:
        """Return the final status once the process has exited and its output is copied."""
        returncode = self.proc.poll()
        if returncode is None:
            return None
        self.reader.join()
        state = "COMPLETED" if returncode == 0 else "FAILED"
        return self._status(state, returncode, self.tail, time.monotonic() - self.started)

    def cancel(self) -> None:
        """Terminate the process."""
        if self.proc.poll() is None:
            log.warning("Stopping %s (pid %d)", self.step_id, self.proc.pid)
            self.proc.terminate()


class EngineWatch:
    """Whether one warm engine still answers, found out once for every run polling it.

    When the engine dies, each of its runs would otherwise spend :meth:`EngineHandle.healthy`'s
    three tries (3 s) in turn before failing, so a batch of five took 15 s to fail.
    """

    def __init__(self, engine: EngineHandle) -> None:
        self.engine = engine
        self.stopped = False

    def has_stopped(self) -> bool:
        """Return True once the engine has failed a health check (and from then on, without asking)."""
        if not self.stopped:
            self.stopped = self.engine.healthy() is None
        return self.stopped


class EngineRun(LocalRun):
    """A job on the warm engine; its log file is read as it grows for progress lines.

    :param watch: shared by the runs of one engine, so they all fail as soon as it is found dead.
    """

    def __init__(self, engine: EngineHandle, view: dict[str, object], watch: EngineWatch | None = None) -> None:
        self.engine = engine
        self.watch = watch or EngineWatch(engine)
        self.step_id, self.name = str(view["job_id"]), str(view["name"])
        self.log_path = Path(str(view["log_file"]))
        self.started = time.monotonic()
        self.offset = 0
        self.partial = ""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def _read_log(self) -> None:
        try:
            with self.log_path.open("r", encoding="utf-8", errors="replace") as fh:
                fh.seek(self.offset)
                text = fh.read()
                self.offset = fh.tell()
        except FileNotFoundError:
            return
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.tail.append(line.rstrip())
            if line.startswith("WARPSPEED_"):
                log.info("%s", line.rstrip())

    def poll(self) -> StepStatus | None:
        """Forward new progress lines; return the final status once the engine says the job ended."""
        try:
            view = self.engine.job(self.step_id)
        except (OSError, ValueError, ComputeError) as err:
            if not self.watch.has_stopped():
                return None  # a slow answer: ask again
            self._read_log()
            self.tail.append(f"ComputeError: the warm Spark engine (pid {self.engine.pid}) stopped: {err}")
            return self._status("FAILED", None, self.tail, time.monotonic() - self.started)
        self._read_log()
        if view["state"] in ACTIVE_STATES:
            return None
        if self.partial:
            self.tail.append(self.partial)
        seconds = view.get("seconds")
        return self._status(str(view["state"]), view.get("returncode"), self.tail,
                            float(seconds) if seconds is not None else time.monotonic() - self.started)

    def cancel(self) -> None:
        """Cancel the job's Spark job group on the engine."""
        log.warning("Cancelling %s on the warm Spark engine (pid %d)", self.step_id, self.engine.pid)
        self.engine.cancel(self.step_id)


def wait_all(runs: list[LocalRun], interval: float = 0.5) -> list[StepStatus]:
    """Poll ``runs`` until every one has ended; return their statuses in order."""
    statuses: dict[int, StepStatus] = {}
    while len(statuses) < len(runs):
        for index, run in enumerate(runs):
            if index not in statuses and (status := run.poll()) is not None:
                statuses[index] = status
        if len(statuses) < len(runs):
            time.sleep(interval)
    return [statuses[i] for i in range(len(runs))]
