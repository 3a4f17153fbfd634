"""A thin EMR client: every call with throttling backoff, clusters and steps in bulk.

Like the Amazon provider's ``EmrHook``, this module only wraps the boto3 EMR client. Which
cluster to reuse or create lives in :mod:`warpspeed.compute.emr.pool`, how a step is built in
:mod:`warpspeed.compute.emr.steps`, and the compute backend in :mod:`warpspeed.compute.emr.backend`.

Every call goes through a client with botocore's adaptive retry mode *and* the hook's own
full-jitter backoff on throttling errors (:mod:`warpspeed.hooks.aws_retry`). Step states come from
ListSteps (one call per 50 steps of a cluster), never one DescribeStep per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from warpspeed.compute.base import StepStatus
from warpspeed.config.cluster_profiles import ACTIVE_CLUSTER_STATES, MAX_STEPS_PER_ADD_CALL
from warpspeed.exceptions import ComputeError
from warpspeed.hooks.aws_retry import call_with_backoff, next_poll_delay, retry_config
from warpspeed.storage.documents import join_uri

ACTIVE_STEP_STATES = ("PENDING", "RUNNING", "CANCEL_PENDING")
LIST_STEPS_PAGE = 50
"""ListSteps returns up to 50 steps per page, newest first."""


def step_log_prefix(log_uri: str | None, cluster_id: str, step_id: str) -> str | None:
    """Return the folder where EMR writes a step's stdout/stderr."""
    if not log_uri:
        return None
    return join_uri(log_uri.replace("s3n://", "s3://"), cluster_id, "steps", step_id) + "/"


def _created_at(cluster: Mapping[str, Any]) -> datetime:
    created = cluster.get("Status", {}).get("Timeline", {}).get("CreationDateTime")
    if isinstance(created, datetime):
        return created if created.tzinfo else created.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def step_status(step: Mapping[str, Any], log_uri: str | None, cluster_id: str) -> StepStatus:
    """Build a status from a ListSteps entry; the log location falls back to the step's log folder."""
    status = step.get("Status", {})
    failure = status.get("FailureDetails") or {}
    change = status.get("StateChangeReason") or {}
    log_file = failure.get("LogFile") or step_log_prefix(log_uri, cluster_id, step["Id"])
    return StepStatus(
        step_id=step["Id"],
        name=step.get("Name", ""),
        state=status.get("State", "PENDING"),
        reason=failure.get("Reason") or change.get("Message") or None,
        message=failure.get("Message"),
        log_file=log_file,
    )


class EmrPoolHook(AwsBaseHook):
    """Call EMR for the cluster pool: list, describe and create clusters; add, list and cancel steps.

    :param aws_conn_id: Airflow AWS connection.
    :param retry_mode: botocore retry mode (``adaptive`` or ``standard``).
    :param max_attempts: botocore attempts per call (the first included).
    :param backoff_attempts: the hook's own attempts on throttling, around botocore's.
    :param sleep: how to wait (tests pass a no-op).
    :param client: an EMR client to use instead of building one (tests, the triggerer).
    """

    def __init__(
        self,
        *args: Any,
        retry_mode: str = "adaptive",
        max_attempts: int = 8,
        backoff_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        client: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs["client_type"] = "emr"
        kwargs.setdefault("config", retry_config(retry_mode, max_attempts))
        super().__init__(*args, **kwargs)
        self.backoff_attempts = backoff_attempts
        self.sleep = sleep
        self._client = client
        self._clusters: dict[str, dict[str, Any]] = {}
        self.throttled = 0
        self.last_call_retried = False

    @cached_property
    def emr(self) -> Any:
        """Return the EMR client (built once, with the retry config)."""
        return self._client if self._client is not None else self.conn

    def call(self, operation: str, **kwargs: Any) -> Any:
        """Call an EMR operation with backoff on throttling; note in ``last_call_retried`` if it was retried."""
        before = self.throttled

        def throttled(attempt: int, delay: float) -> None:
            self.throttled += 1
            self.log.warning("EMR %s throttled (retry %d in %.2f s)", operation, attempt + 1, delay)

        result = call_with_backoff(
            getattr(self.emr, operation),
            attempts=self.backoff_attempts,
            sleep=self.sleep,
            on_throttle=throttled,
            **kwargs,
        )
        retries = result.get("ResponseMetadata", {}).get("RetryAttempts", 0) if isinstance(result, dict) else 0
        self.last_call_retried = bool(retries) or self.throttled > before
        return result

    def _pages(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.call(operation, **kwargs)
            items += page.get(key, [])
            if not page.get("Marker"):
                return items
            kwargs["Marker"] = page["Marker"]

    # -- clusters -------------------------------------------------------------------------
    def active_clusters(self) -> list[dict[str, Any]]:
        """Return every active cluster of the account and region (ListClusters, paginated)."""
        return self._pages("list_clusters", "Clusters", ClusterStates=list(ACTIVE_CLUSTER_STATES))

    def clusters_named(self, name: str) -> list[dict[str, Any]]:
        """Return active clusters called ``name``."""
        return [c for c in self.active_clusters() if c.get("Name") == name]

    def describe(self, cluster_id: str) -> dict[str, Any]:
        """Return DescribeCluster's cluster (read-after-write consistent); remembered for links."""
        cluster: dict[str, Any] = self.call("describe_cluster", ClusterId=cluster_id)["Cluster"]
        self._clusters[cluster_id] = cluster
        return cluster

    def known(self, cluster_id: str) -> dict[str, Any]:
        """Return what this hook already knows of a cluster (described or created), else describe it."""
        return self._clusters.get(cluster_id) or self.describe(cluster_id)

    def log_uri(self, cluster_id: str) -> str | None:
        """Return the cluster's log URI (cached from DescribeCluster or RunJobFlow)."""
        return self.known(cluster_id).get("LogUri")

    def tags(self, cluster_id: str) -> dict[str, str]:
        """Return the cluster's tags (cached)."""
        return {t["Key"]: t["Value"] for t in self.known(cluster_id).get("Tags", [])}

    def create(self, request: Mapping[str, Any]) -> str:
        """Create a cluster from the request (which may carry its first steps); return its id.

        RunJobFlow has no idempotency token: when the call had to be retried, an attempt whose
        answer was lost may have created a cluster too, so same-named clusters created since the
        call began (other than the one returned) are terminated. Callers hold the workload's lease.
        """
        began = datetime.now(UTC) - timedelta(seconds=5)
        cluster_id = str(self.call("run_job_flow", **request)["JobFlowId"])
        self._clusters[cluster_id] = {"Id": cluster_id, "LogUri": request.get("LogUri"),
                                      "Tags": list(request.get("Tags", []))}
        if self.last_call_retried:
            extra = [
                c["Id"] for c in self.clusters_named(str(request["Name"]))
                if c["Id"] != cluster_id and _created_at(c) >= began
            ]
            if extra:
                self.log.warning("RunJobFlow was retried and created %s too; terminating them", extra)
                self.call("terminate_job_flows", JobFlowIds=extra)
        return cluster_id

    # -- steps ----------------------------------------------------------------------------
    def active_steps(self, cluster_id: str) -> list[dict[str, Any]]:
        """Return the cluster's PENDING/RUNNING/CANCEL_PENDING steps."""
        return self._pages("list_steps", "Steps", ClusterId=cluster_id, StepStates=list(ACTIVE_STEP_STATES))

    def add_steps(self, cluster_id: str, steps: Sequence[Mapping[str, Any]]) -> list[str]:
        """Submit steps in as few AddJobFlowSteps calls as possible (256 per call)."""
        ids: list[str] = []
        for i in range(0, len(steps), MAX_STEPS_PER_ADD_CALL):
            chunk = list(steps[i : i + MAX_STEPS_PER_ADD_CALL])
            ids += self.call("add_job_flow_steps", JobFlowId=cluster_id, Steps=chunk)["StepIds"]
        return ids

    def cancel_steps(self, cluster_id: str, step_ids: Sequence[str]) -> None:
        """Cancel pending or running steps (SEND_INTERRUPT), 256 per call."""
        for i in range(0, len(step_ids), MAX_STEPS_PER_ADD_CALL):
            self.call("cancel_steps", ClusterId=cluster_id, StepIds=list(step_ids[i : i + MAX_STEPS_PER_ADD_CALL]),
                      StepCancellationOption="SEND_INTERRUPT")

    def list_steps(
        self,
        cluster_id: str,
        log_uri: str | None = None,
        until: Callable[[list[StepStatus]], bool] = lambda _s: False,
        states: Sequence[str] = (),
    ) -> list[StepStatus]:
        """Return the cluster's steps (in ``states``, default all), newest first, paging until ``until`` holds."""
        found: list[StepStatus] = []
        kwargs: dict[str, Any] = {"ClusterId": cluster_id} | ({"StepStates": list(states)} if states else {})
        while True:
            page = self.call("list_steps", **kwargs)
            found += [step_status(s, log_uri, cluster_id) for s in page.get("Steps", [])]
            if until(found) or not page.get("Marker"):
                return found
            kwargs["Marker"] = page["Marker"]

    def step_states(
        self, cluster_id: str, step_ids: Sequence[str], log_uri: str | None = None
    ) -> list[StepStatus]:
        """Return the steps' states from the cluster's step list (newest first, paged until found).

        One ListSteps call per cluster covers up to 50 steps; StepIds filters are capped at
        10 per call, so the whole list is read instead.
        """
        wanted = set(step_ids)
        listed = self.list_steps(cluster_id, log_uri, lambda found: wanted <= {s.step_id for s in found})
        found = {s.step_id: s for s in listed if s.step_id in wanted}
        missing = wanted - set(found)
        if missing:
            raise ComputeError(f"cluster {cluster_id} does not list steps {sorted(missing)}")
        return [found[s] for s in step_ids]

    def wait_for_steps(
        self,
        cluster_id: str,
        step_ids: Sequence[str],
        *,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        timeout: float = 6 * 3600,
        log_uri: str | None = None,
    ) -> list[StepStatus]:
        """Poll (jittered, growing interval) until every step has ended; return their states."""
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            states = self.step_states(cluster_id, step_ids, log_uri)
            pending = [s for s in states if not s.terminal]
            if not pending:
                return states
            if time.monotonic() > deadline:
                raise ComputeError(
                    f"{len(pending)} steps on {cluster_id} still running after {timeout:.0f} s"
                )
            self.sleep(next_poll_delay(polls, poll_interval, max_poll_interval))
            polls += 1
