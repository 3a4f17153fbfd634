"""The compute backend interface: where Spark jobs of a workload run, and how their ends are judged.

Two implementations sit behind it, chosen by ``[warpspeed] compute_backend``: ``local``
(``spark-submit`` on this machine, :mod:`warpspeed.compute.local.backend`) and ``emr`` (a pool of
workload-specific EMR clusters, :mod:`warpspeed.compute.emr.backend`). Operators talk to this
interface only, in one flow for both::

    statuses = backend.start(cluster, jobs)        # local: ran to completion; emr: submitted
    while any job is still running:                # never for local
        defer on backend.wait_trigger(...)         # or backend.wait(...) when not deferrable
    resubmit = retry_decision(statuses, retried)   # pure: Spot-lost jobs, once, on on-demand
    outcomes = [outcome_of(s, seconds) ...]        # one failure message per job

This module is pure (no Airflow, no AWS), so the rules above are tested without either.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TERMINAL_STEP_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})
SPOT_LOSS = re.compile(
    r"spot|lost node|node (was )?lost|decommission|executorlost|instance.*(terminated|reclaim|interrupt)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ClusterRef:
    """A place where a workload's Spark jobs run.

    :param created: True when this call created the cluster, False when it reused one.
    """

    workload: str
    cluster_id: str
    backend: str
    created: bool = False


@dataclass(frozen=True)
class SparkJob:
    """One Spark application: a script of ``spark_jobs/`` and its arguments.

    :param name: unique per piece of work and run (e.g. batch id): a retry finds a job still
        running from an earlier attempt by this name and waits for it instead of resubmitting.
    :param engine: ``spark`` (a Spark application) or ``arrow`` (a plain Python job of
        ``spark_jobs/``, the single-node engine: no JVM, ``conf`` unused).
    """

    name: str
    script: str
    args: tuple[str, ...] = ()
    conf: dict[str, str] = field(default_factory=dict)
    engine: str = "spark"


@dataclass(frozen=True)
class StepStatus:
    """Where one job (an EMR step, a local ``spark-submit``) is; JSON-safe for trigger events."""

    step_id: str
    name: str
    state: str
    reason: str | None = None
    message: str | None = None
    log_file: str | None = None
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


class ComputeBackend(ABC):
    """Run Spark jobs of a workload on that workload's cluster."""

    name: str
    asynchronous: bool = False
    """True when :meth:`start` only submits (operators then defer on :meth:`wait_trigger`);
    False when :meth:`start` runs the jobs to completion in the calling process."""

    @abstractmethod
    def ensure_cluster(self, workload: str, profile: str) -> ClusterRef:
        """Return a ready cluster for ``workload`` (reused if one fits, else created)."""

    def ensure_cluster_for(self, workload: str, profile: str, needed_steps: int) -> ClusterRef:
        """Return a cluster for ``workload`` with room for ``needed_steps`` jobs."""
        return self.ensure_cluster(workload, profile)

    def ensure_clusters(
        self, needs: Mapping[str, tuple[str, Sequence[SparkJob]]]
    ) -> dict[str, ClusterRef]:
        """Return a cluster per workload of ``{workload: (profile, jobs)}``.

        A backend may launch a created cluster with the jobs already on it; :meth:`start`
        then finds them by name instead of submitting them again.
        """
        return {w: self.ensure_cluster_for(w, p, max(1, len(j))) for w, (p, j) in needs.items()}

    @abstractmethod
    def start(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[StepStatus]:
        """Start ``jobs`` (adopting same-named jobs still running) and return their statuses, in order.

        :param on_demand_only: run on on-demand capacity only (a retry after Spot loss).
        """

    def wait(self, cluster: ClusterRef, job_ids: Sequence[str]) -> list[StepStatus]:
        """Block until the jobs have ended (asynchronous backends; synchronous ones have ended)."""
        raise NotImplementedError(f"the {self.name} backend runs jobs to completion in start()")

    def wait_trigger(
        self, cluster: ClusterRef, job_ids: Sequence[str], *, poll_interval: float = 30.0
    ) -> Any:
        """Return a trigger that fires when the jobs have ended (asynchronous backends only)."""
        raise NotImplementedError(f"the {self.name} backend runs jobs to completion in start()")

    @abstractmethod
    def cancel(self, cluster: ClusterRef, job_ids: Sequence[str]) -> None:
        """Cancel jobs this process started that are still running (``on_kill``)."""

    def links(self, cluster: ClusterRef) -> dict[str, Any] | None:
        """Return what the UI links of a cluster need (region, log URI), or None when it has none."""
        return None

    def run_jobs(self, cluster: ClusterRef, jobs: Sequence[SparkJob]) -> list[JobOutcome]:
        """Start, wait (blocking) and retry Spot-lost jobs once on on-demand; return outcomes in order."""
        started = time.monotonic()
        statuses = self._settled(cluster, self.start(cluster, jobs))
        lost = [i for i, s in enumerate(statuses) if should_retry_on_demand(s, retried=False)]
        if lost:
            retried = self._settled(cluster, self.start(cluster, [jobs[i] for i in lost], on_demand_only=True))
            for i, status in zip(lost, retried, strict=True):
                statuses[i] = status
        seconds = time.monotonic() - started
        return [outcome_of(s, seconds) for s in statuses]

    def _settled(self, cluster: ClusterRef, statuses: list[StepStatus]) -> list[StepStatus]:
        if all(s.terminal for s in statuses):
            return statuses
        return self.wait(cluster, [s.step_id for s in statuses])
