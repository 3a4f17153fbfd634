"""What operators that use the compute backend share: the backend and its profiles, and the one job flow."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from functools import cached_property
from typing import Any

from warpspeed.compute.base import ClusterRef, ComputeBackend
from warpspeed.compute.factory import compute_backend_for, profiles_file_for
from warpspeed.compute.flow import JobFlow, Resubmit, StepStatus, drive
from warpspeed.exceptions import ComputeError
from warpspeed.lineage.spark import lineage_active, parent_conf, step_conf
from warpspeed.operators._base import WarpSpeedOperator, checked_event


class ComputeOperator(WarpSpeedOperator):
    """Base of operators that use the compute backend.

    :param workloads_file: workloads YAML; the ``cluster_profiles.yaml`` beside it is the default
        ``cluster_profiles_file``.
    :param cluster_profiles_file: cluster profiles YAML for the ``emr`` backend.
    """

    def __init__(
        self, *, workloads_file: str | None = None, cluster_profiles_file: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workloads_file = workloads_file
        self.cluster_profiles_file = cluster_profiles_file

    @property
    def profiles_file(self) -> str | None:
        """Return the cluster profiles this task's backend reads (the rule of :func:`.profiles_file_for`)."""
        return profiles_file_for(self.workloads_file, self.cluster_profiles_file)

    @cached_property
    def backend(self) -> ComputeBackend:
        """Build the configured compute backend lazily."""
        return compute_backend_for(self.settings, self.profiles_file)

    def lineage_conf(self, context: Any) -> dict[str, str]:
        """Return the Spark conf naming this task as the OpenLineage parent of the jobs it starts (none when off).

        EMR steps also get Airflow's transport when ``[openlineage] spark_inject_transport_info`` is
        true; local runs get it from the backend (:mod:`warpspeed.lineage.spark`).
        """
        if not lineage_active():
            return {}
        return step_conf(context) if self.backend.name == "emr" else parent_conf(context)


class FlowOperator(ComputeOperator):
    """Base of operators that run jobs to their end: the flow of :mod:`warpspeed.compute.flow`, deferring.

    While jobs run, the task defers on the backend's trigger (or waits in the worker when not
    ``deferrable``) and resumes in ``execute_complete(context, event, pending)``; ``on_kill``
    cancels the jobs still running.

    :param poll_interval: seconds before the first poll of the jobs (the interval then grows).
    :param deferrable: wait in the triggerer instead of a worker slot (True whatever
        ``[operators] default_deferrable`` says).
    """

    def __init__(self, *, poll_interval: float = 30.0, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self._driving: tuple[Callable[[], ClusterRef], JobFlow] | None = None

    def run_flow(
        self,
        cluster: Callable[[], ClusterRef],
        flow: JobFlow,
        statuses: Iterable[StepStatus],
        *,
        resubmit: Resubmit,
        pending: Callable[[], dict[str, Any]],
        timeout: timedelta | None,
    ) -> JobFlow:
        """Drive ``flow`` until every job has ended; return it.

        :param cluster: where the jobs run now (read again after a resubmit).
        :param pending: the JSON state ``execute_complete`` resumes from (it holds ``flow.to_dict()``).
        :param timeout: how long one deferral may last.
        """

        def defer(running: list[str]) -> Any:
            ref = cluster()
            self.log.info("%d jobs running on %s; deferring", len(running), ref.cluster_id)
            state = pending()
            self.defer(
                trigger=self.backend.wait_trigger(ref, running, poll_interval=self.poll_interval).echoing(state),
                method_name="execute_complete",
                kwargs={"pending": state},
                timeout=timeout,
            )

        def wait(running: list[str]) -> list[StepStatus]:
            ref = cluster()
            self.log.info("Waiting for %d jobs on %s (blocking)", len(running), ref.cluster_id)
            return self.backend.wait(ref, running)

        self._driving = (cluster, flow)
        drive(flow, statuses, resubmit=resubmit, wait=wait, defer=defer if self.deferrable else None)
        self._driving = None
        return flow

    def resume(
        self,
        event: Mapping[str, Any] | None,
        pending: Mapping[str, Any] | None,
        cluster: Callable[[], ClusterRef],
        what: str,
    ) -> tuple[Mapping[str, Any], list[StepStatus]]:
        """Check the trigger's event and the deferred state; return the state and the event's statuses.

        :param pending: what the task deferred with; its ``flow`` is :meth:`JobFlow.to_dict`'s. When it
            is missing, the event's ``echo`` (the same state, carried by the trigger) stands in:
            ``airflow dags test`` resumes a task with the trigger's event alone.
        :param cluster: the cluster the task deferred on (read once ``pending`` is known to hold a flow).
        :param what: what was waited for, for the error (``steps``, ``maintenance of t``).
        :raises ComputeError: on an error event, one without steps or about another cluster, or a
            ``pending`` without a flow (deferred by an earlier version: clear the task to rerun it).
        """
        failed = f"waiting for {what} failed"
        checked = checked_event(event, status="done", failed=failed, error=ComputeError)
        if (not pending or "flow" not in pending) and isinstance(checked.get("echo"), Mapping):
            pending = checked["echo"]
        statuses = [StepStatus.from_dict(s) for s in checked.get("steps") or ()]
        if not statuses:
            raise ComputeError(f"{failed}: the trigger event lacks steps: {checked!r}")
        if not pending or "flow" not in pending:
            raise ComputeError(f"{failed}: execute_complete got no deferred flow (a task deferred by an earlier "
                               "version?); clear the task to run it again")
        checked_event(checked, status="done", failed=failed, error=ComputeError, cluster_id=cluster().cluster_id)
        return pending, statuses

    def on_kill(self) -> None:
        """Cancel the jobs this task started that are still running."""
        if self._driving:
            cluster, flow = self._driving
            ref, running = cluster(), flow.running
            self.log.warning("Task killed: cancelling %d jobs on %s", len(running), ref.cluster_id)
            self.backend.cancel(ref, running)
