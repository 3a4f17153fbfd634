"""The one flow every task follows to run jobs on a compute backend, and how the jobs' ends are judged.

Every caller (the score and maintenance operators, :meth:`ComputeBackend.run_jobs
<warpspeed.compute.base.ComputeBackend.run_jobs>`, the maintenance service's blocking run) goes
through :func:`drive`::

    statuses = backend.start(cluster, jobs)        # local: ran to completion; EMR: submitted (or found)
    flow = JobFlow.begin(statuses, started_at)
    drive(flow, statuses, resubmit=..., wait=..., defer=...)
        settle the jobs that ended; a job lost to Spot, not yet retried -> resubmit once on on-demand
        while a job runs: defer (a deferrable operator; the flow is JSON: JobFlow.to_dict) or wait inline
    flow.outcomes()                                # one JobOutcome per job; failure_message for the failed

Pure (no Airflow, no AWS): the caller binds the backend and the cluster into ``resubmit``, ``wait``
and ``defer``, so the rules are tested without either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from warpspeed.exceptions import ComputeError

log = logging.getLogger(__name__)

TERMINAL_STEP_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})
SPOT_LOSS = re.compile(
    r"spot|lost node|node (was )?lost|decommission|executorlost|instance.*(terminated|reclaim|interrupt)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StepStatus:
    """Where one job (an EMR step, a local ``spark-submit``) is; JSON-safe for trigger events."""

    step_id: str
    """The backend's id of the job: an EMR step id, a local run id."""
    name: str
    """The job's name, which carries its identity (``warpspeed-<batch id>``): a retry finds its job by it."""
    state: str
    """EMR's step states for every backend: ``PENDING``, ``RUNNING`` or one of :data:`TERMINAL_STEP_STATES`."""
    reason: str | None = None
    """Why the job failed, in a line (EMR's failure reason, else its state change message; locally the last
    error line of the log). :attr:`lost_to_spot` reads it and :attr:`message`."""
    message: str | None = None
    """EMR's longer failure message, when it gave one."""
    log_file: str | None = None
    """Where the job's log is (a URI)."""
    seconds: float | None = None
    """How long the job ran, when the backend measured it itself (local ``spark-submit``)."""

    @property
    def terminal(self) -> bool:
        """Tell whether the job has ended."""
        return self.state in TERMINAL_STEP_STATES

    @property
    def succeeded(self) -> bool:
        """Tell whether the job completed."""
        return self.state == "COMPLETED"

    @property
    def lost_to_spot(self) -> bool:
        """Tell whether the job died with its (Spot) nodes rather than by its own fault."""
        if self.state == "INTERRUPTED":
            return True
        if self.state != "FAILED":
            return False
        return bool(SPOT_LOSS.search(f"{self.reason or ''} {self.message or ''}"))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StepStatus:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            step_id=str(raw["step_id"]),
            name=str(raw.get("name") or ""),
            state=str(raw["state"]),
            reason=raw.get("reason"),
            message=raw.get("message"),
            log_file=raw.get("log_file"),
            seconds=raw.get("seconds"),
        )


@dataclass(frozen=True)
class JobOutcome:
    """How a Spark job ended."""

    name: str
    state: Literal["SUCCEEDED", "FAILED"]
    seconds: float
    log_uri: str | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        """Tell whether the job succeeded."""
        return self.state == "SUCCEEDED"


def should_retry_on_demand(status: StepStatus, retried: bool) -> bool:
    """Decide the one retry rule: resubmit a job lost to Spot on on-demand nodes, once."""
    return status.lost_to_spot and not retried


def outcome_of(status: StepStatus, seconds: float) -> JobOutcome:
    """Turn a final status into the backend-neutral outcome (the one place a failure reason is built).

    :param seconds: the wall time to charge when the status did not measure its own.
    """
    seconds = status.seconds if status.seconds is not None else seconds
    if status.succeeded:
        return JobOutcome(status.name, "SUCCEEDED", seconds, status.log_file)
    reason = status.reason or status.state
    if status.message:
        reason = f"{reason}: {status.message}"
    return JobOutcome(
        status.name, "FAILED", seconds, status.log_file, f"step {status.step_id} {status.state}: {reason}"
    )


def failure_message(failures: Sequence[str], total: int, what: str = "batches") -> str:
    """Return the task's failure message for ``failures`` (one line each) out of ``total``."""
    return f"{len(failures)} of {total} {what} failed:\n" + "\n".join(failures)


@dataclass
class TrackedJob:
    """One job of a flow: the step that runs it now, whether that step is its one retry, how it ended."""

    step_id: str
    retried: bool = False
    final: StepStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"step_id": self.step_id, "retried": self.retried,
                "final": self.final.to_dict() if self.final else None}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrackedJob:
        """Rebuild from :meth:`to_dict`."""
        final = raw.get("final")
        return cls(str(raw["step_id"]), bool(raw.get("retried")), StepStatus.from_dict(final) if final else None)


@dataclass
class JobFlow:
    """Where a task's jobs are, in the order they were started; JSON-safe so a deferred task resumes from it.

    :param started_at: when the task started the jobs (the wall time charged to jobs that did not
        measure their own).
    """

    started_at: datetime
    jobs: list[TrackedJob]

    @classmethod
    def begin(cls, statuses: Iterable[StepStatus], started_at: datetime, *, retried: bool = False) -> JobFlow:
        """Track the jobs ``backend.start`` (or a restart, ``retried``) just returned."""
        return cls(started_at, [TrackedJob(s.step_id, retried) for s in statuses])

    @property
    def running(self) -> list[str]:
        """Return the step ids of the jobs that have not ended."""
        return [j.step_id for j in self.jobs if j.final is None]

    def settle(self, statuses: Mapping[str, StepStatus]) -> list[int]:
        """Record the jobs that ended for good; return the positions of those to resubmit on on-demand nodes.

        :param statuses: the latest status of every running job, by step id.
        :raises ComputeError: when a running job has no status (a trigger event missing steps).
        """
        missing = [step_id for step_id in self.running if step_id not in statuses]
        if missing:
            raise ComputeError(f"the trigger event or wait lacks steps {missing}")
        lost = []
        for index, job in enumerate(self.jobs):
            if job.final is not None:
                continue
            status = statuses[job.step_id]
            if should_retry_on_demand(status, job.retried):
                lost.append(index)
            elif status.terminal:
                job.final = status
        return lost

    def resubmitted(self, positions: Sequence[int], statuses: Sequence[StepStatus]) -> None:
        """Follow the on-demand retries of the jobs at ``positions`` instead of the lost steps."""
        for index, status in zip(positions, statuses, strict=True):
            self.jobs[index] = TrackedJob(status.step_id, retried=True)

    def finals(self) -> list[StepStatus]:
        """Return every job's final status (once :meth:`running` is empty)."""
        ended = [j.final for j in self.jobs if j.final is not None]
        if len(ended) != len(self.jobs):
            raise ComputeError(f"steps {self.running} have not ended")
        return ended

    def restate(self, finals: Sequence[StepStatus]) -> None:
        """Replace every job's final status (in job order), e.g. with the backend's explanation of failures."""
        if len(finals) != len(self.jobs):
            raise ComputeError(f"{len(finals)} statuses for {len(self.jobs)} jobs")
        for job, status in zip(self.jobs, finals, strict=True):
            job.final = status

    def outcomes(self, now: datetime | None = None) -> list[JobOutcome]:
        """Return every job's outcome; a job that did not measure its run time is charged the time since the start."""
        seconds = ((now or datetime.now(UTC)) - self.started_at).total_seconds()
        return [outcome_of(status, seconds) for status in self.finals()]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``defer(kwargs=...)``)."""
        return {"started_at": self.started_at.isoformat(), "jobs": [j.to_dict() for j in self.jobs]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> JobFlow:
        """Rebuild from :meth:`to_dict`."""
        return cls(datetime.fromisoformat(raw["started_at"]), [TrackedJob.from_dict(j) for j in raw["jobs"]])


Resubmit = Callable[[list[int]], Sequence[StepStatus]]
"""Start the jobs at these positions again on on-demand nodes; return their statuses in order."""
Wait = Callable[[list[str]], Sequence[StepStatus]]
"""Block until these steps have ended; return their statuses."""
Defer = Callable[[list[str]], NoReturn]
"""Suspend the task until these steps have ended (an operator raises ``TaskDeferred`` with the flow)."""


def drive(
    flow: JobFlow, statuses: Iterable[StepStatus], *, resubmit: Resubmit, wait: Wait, defer: Defer | None = None
) -> JobFlow:
    """Take ``flow`` to the end of every job: settle, resubmit Spot losses once, then defer or wait.

    Returns ``flow`` with every job final, or leaves through ``defer`` while jobs run (the caller
    resumes with the flow from :meth:`JobFlow.from_dict` and the trigger's statuses).

    :param statuses: what the latest start, wait or trigger event said.
    :param defer: None to wait inline (not deferrable, or scripts).
    """
    known = {s.step_id: s for s in statuses}
    while True:
        lost = flow.settle(known)
        if lost:
            log.warning("%d jobs lost to Spot reclamation (%s); resubmitting them once on on-demand nodes",
                        len(lost), ", ".join(flow.jobs[i].step_id for i in lost))
            again = list(resubmit(lost))
            flow.resubmitted(lost, again)
            known.update((s.step_id, s) for s in again)
            continue
        running = flow.running
        if not running:
            return flow
        if defer is not None:
            defer(running)
        known.update((s.step_id, s) for s in wait(running))
