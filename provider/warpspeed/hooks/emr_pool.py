"""The EMR cluster pool: one reusable cluster per workload, steps in bulk, throttling-safe.

**Spin or reuse.** A workload's cluster is named ``warpspeed-<workload>-<profile>-<hash>`` and
tagged with ``warpspeed:workload`` and ``warpspeed:profile-hash``, where the hash fingerprints
the whole RunJobFlow request (:func:`warpspeed.cluster_profiles.profile_hash`). The pool
reuses an active (STARTING, BOOTSTRAPPING, RUNNING, WAITING) cluster whose tags match and
that has room for the window's steps; otherwise it creates one. A changed profile changes the
hash, so a stale cluster is never reused: it finishes what it runs and idles out.

**One creator per workload.** EMR's RunJobFlow has no idempotency token, so the pool
serialises spin-or-reuse per workload with a lease under the storage prefix:

* ``s3://`` prefix: ``<prefix>/locks/emr/<workload>.lease`` taken with an S3 conditional
  write (``PutObject If-None-Match: *``). A lease older than its TTL (the holder died) is
  taken over with ``If-Match: <etag>``, a compare-and-swap, so two waiters cannot both take
  it; release is ``DeleteObject If-Match: <etag>``.
* local prefix (tests, single host): ``fcntl.flock`` on ``<prefix>/locks/emr/<workload>.lock``.

Inside the lease the holder first checks the cluster id the previous holder recorded in
``<prefix>/emr/pool/<workload>.json`` (DescribeCluster by id is read-after-write consistent,
ListClusters may lag), then lists clusters, and only then creates one and records its id.

**Calls per window** are O(workloads): per workload one ListClusters page, one
DescribeCluster, one ListSteps (capacity), at most one RunJobFlow, ``ceil(steps/256)``
AddJobFlowSteps, and per poll ``ceil(steps/50)`` ListSteps pages. Every call goes through a
client with botocore's adaptive retry mode *and* the hook's own full-jitter backoff on
throttling errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import ClientError

from warpspeed.cluster_profiles import (
    ACTIVE_CLUSTER_STATES,
    MAX_ACTIVE_STEPS,
    MAX_STEPS_PER_ADD_CALL,
    ON_DEMAND_LABEL,
    TAG_PROFILE_HASH,
    TAG_WORKLOAD,
    ProfileCatalog,
    build_run_job_flow_request,
    request_hash,
)
from warpspeed.exceptions import ComputeError, WarpSpeedConfigError, WarpSpeedError
from warpspeed.hooks.compute import ClusterRef, ComputeBackend, JobOutcome, SparkJob
from warpspeed.settings import REPO_ROOT, WarpSpeedSettings
from warpspeed.storage import Storage, join_uri, local_path, storage_for

THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestThrottled",
    }
)
TERMINAL_STEP_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})
ACTIVE_STEP_STATES = ("PENDING", "RUNNING", "CANCEL_PENDING")
LIST_STEPS_PAGE = 50
"""ListSteps returns up to 50 steps per page, newest first."""
SPOT_LOSS = re.compile(
    r"spot|lost node|node (was )?lost|decommission|executorlost|instance.*(terminated|reclaim|interrupt)",
    re.IGNORECASE,
)
ON_DEMAND_RETRY_SUFFIX = "#on-demand"
DEFAULT_PROFILES_FILE = REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml"


def retry_config(mode: str = "adaptive", max_attempts: int = 8) -> Config:
    """Return the botocore client config every EMR call goes through.

    ``adaptive`` adds client-side rate limiting on top of ``standard`` retries (exponential
    backoff with jitter on throttling and transient errors).
    """
    if mode not in ("adaptive", "standard", "legacy"):
        raise WarpSpeedConfigError(f"retry mode {mode!r} must be adaptive, standard or legacy")
    retries: Any = {"mode": mode, "total_max_attempts": max_attempts}
    return Config(retries=retries, connect_timeout=10, read_timeout=60)


def is_throttle(err: BaseException) -> bool:
    """Tell whether ``err`` is an AWS throttling error."""
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in THROTTLE_CODES


def backoff_delay(
    attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Return a full-jitter exponential backoff delay for retry number ``attempt`` (0-based)."""
    return (rng or random).uniform(0, min(cap, base * 2**attempt))


def call_with_backoff(
    fn: Callable[..., Any],
    *,
    attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
    on_throttle: Callable[[int, float], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``fn(**kwargs)``, retrying throttling errors with full-jitter backoff."""
    for attempt in range(attempts):
        try:
            return fn(**kwargs)
        except ClientError as err:
            if not is_throttle(err) or attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt)
            if on_throttle:
                on_throttle(attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# -- step status ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StepStatus:
    """Where one EMR step is, as the trigger reports it (JSON-safe)."""

    step_id: str
    name: str
    state: str
    reason: str | None = None
    message: str | None = None
    log_file: str | None = None

    @property
    def terminal(self) -> bool:
        """Tell whether the step has ended."""
        return self.state in TERMINAL_STEP_STATES

    @property
    def succeeded(self) -> bool:
        """Tell whether the step completed."""
        return self.state == "COMPLETED"

    @property
    def lost_to_spot(self) -> bool:
        """Tell whether the step died with its (Spot) nodes rather than by its own fault."""
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
        )

    @classmethod
    def from_api(cls, step: Mapping[str, Any], log_uri: str | None, cluster_id: str) -> StepStatus:
        """Build from a ListSteps entry; the log location falls back to the step's log folder."""
        status = step.get("Status", {})
        failure = status.get("FailureDetails") or {}
        change = status.get("StateChangeReason") or {}
        log_file = failure.get("LogFile") or step_log_prefix(log_uri, cluster_id, step["Id"])
        return cls(
            step_id=step["Id"],
            name=step.get("Name", ""),
            state=status.get("State", "PENDING"),
            reason=failure.get("Reason") or change.get("Message") or None,
            message=failure.get("Message"),
            log_file=log_file,
        )


def step_log_prefix(log_uri: str | None, cluster_id: str, step_id: str) -> str | None:
    """Return the folder where EMR writes a step's stdout/stderr."""
    if not log_uri:
        return None
    return join_uri(log_uri.replace("s3n://", "s3://"), cluster_id, "steps", step_id) + "/"


# -- leases ---------------------------------------------------------------------------------
class PoolLease(Protocol):
    """Mutual exclusion of spin-or-reuse per workload across processes and hosts."""

    def hold(self, workload: str) -> contextlib.AbstractContextManager[None]:
        """Hold the workload's lease for the duration of the ``with`` block."""


class FileLease:
    """Lease with ``fcntl.flock`` on a local file (one host; each ``open`` is its own lock)."""

    def __init__(
        self, folder: Path, wait_seconds: float = 600.0, sleep: Callable[[float], None] = time.sleep
    ):
        self.folder = folder
        self.wait_seconds = wait_seconds
        self.sleep = sleep

    @contextlib.contextmanager
    def hold(self, workload: str) -> Iterator[None]:
        """Block (polling) until the lock is ours; release on exit."""
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        with (self.folder / f"{workload}.lock").open("a") as fh:
            attempt = 0
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarpSpeedError(
                            f"timed out waiting for the EMR pool lock of {workload}"
                        ) from None
                    self.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.0))
                    attempt += 1
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class S3Lease:
    """Lease held as an S3 object created with a conditional write (see the module doc)."""

    def __init__(
        self,
        s3_client: Any,
        prefix_uri: str,
        *,
        ttl_seconds: float = 300.0,
        wait_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        parsed = urlparse(prefix_uri)
        self.client = s3_client
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.ttl = ttl_seconds
        self.wait_seconds = wait_seconds
        self.sleep = sleep
        self.clock = clock
        self.owner = f"{os.uname().nodename}:{os.getpid()}"

    def _key(self, workload: str) -> str:
        return f"{self.prefix}/{workload}.lease".lstrip("/")

    @staticmethod
    def _conflict(err: ClientError) -> bool:
        code = err.response.get("Error", {}).get("Code")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)

    def _body(self, token: str) -> bytes:
        expires = self.clock() + timedelta(seconds=self.ttl)
        return json.dumps({"owner": self.owner, "token": token, "expires_at": expires.isoformat()}).encode()

    def _try_take(self, key: str, token: str) -> str | None:
        """Create the lease, or take over an expired one; return its ETag or None."""
        try:
            return str(
                self.client.put_object(Bucket=self.bucket, Key=key, Body=self._body(token), IfNoneMatch="*")[
                    "ETag"
                ]
            )
        except ClientError as err:
            if not self._conflict(err):
                raise
        try:
            current = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None  # released meanwhile: try again at once next round
            raise
        held = json.loads(current["Body"].read() or b"{}")
        expires = datetime.fromisoformat(held.get("expires_at", "1970-01-01T00:00:00+00:00"))
        if expires > self.clock():
            return None
        try:
            return str(
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=self._body(token), IfMatch=current["ETag"]
                )["ETag"]
            )
        except ClientError as err:
            if self._conflict(err):
                return None
            raise

    @contextlib.contextmanager
    def hold(self, workload: str) -> Iterator[None]:
        """Wait for the lease (jittered polling), hold it, release it with If-Match."""
        key = self._key(workload)
        token = hashlib.sha256(f"{self.owner}:{time.time_ns()}:{random.random()}".encode()).hexdigest()[:16]
        deadline = time.monotonic() + self.wait_seconds
        attempt = 0
        while (etag := self._try_take(key, token)) is None:
            if time.monotonic() > deadline:
                raise WarpSpeedError(f"timed out waiting for the EMR pool lease s3://{self.bucket}/{key}")
            self.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
            attempt = min(attempt + 1, 6)
        try:
            yield
        finally:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
            except ClientError as err:
                if not self._conflict(err):
                    raise
                # Our lease expired and someone took it over: theirs now, leave it.


def lease_for(storage_prefix: str, s3_client_factory: Callable[[], Any] | None = None) -> PoolLease:
    """Return the lease implementation for the storage prefix's scheme."""
    root = join_uri(storage_prefix, "locks", "emr")
    if urlparse(storage_prefix).scheme in ("s3", "s3a"):
        if s3_client_factory is None:
            raise WarpSpeedConfigError("an s3:// storage prefix needs an S3 client for the EMR pool lease")
        return S3Lease(s3_client_factory(), root)
    return FileLease(local_path(root))


# -- the hook -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterChoice:
    """What spin-or-reuse decided and why."""

    cluster_id: str
    created: bool
    reason: str
    log_uri: str | None = None


class EmrPoolHook(AwsBaseHook):
    """Find, reuse or create a workload's EMR cluster and run steps on it.

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
        self._log_uris: dict[str, str | None] = {}
        self.throttled = 0

    @cached_property
    def emr(self) -> Any:
        """Return the EMR client (built once, with the retry config)."""
        return self._client if self._client is not None else self.conn

    def call(self, operation: str, **kwargs: Any) -> Any:
        """Call an EMR operation with backoff on throttling."""

        def throttled(attempt: int, delay: float) -> None:
            self.throttled += 1
            self.log.warning("EMR %s throttled (retry %d in %.2f s)", operation, attempt + 1, delay)

        return call_with_backoff(
            getattr(self.emr, operation),
            attempts=self.backoff_attempts,
            sleep=self.sleep,
            on_throttle=throttled,
            **kwargs,
        )

    # -- lookup ---------------------------------------------------------------------------
    def clusters_named(self, name: str) -> list[dict[str, Any]]:
        """Return active clusters called ``name`` (ListClusters, paginated)."""
        found, marker = [], None
        while True:
            kwargs: dict[str, Any] = {"ClusterStates": list(ACTIVE_CLUSTER_STATES)}
            if marker:
                kwargs["Marker"] = marker
            page = self.call("list_clusters", **kwargs)
            found += [c for c in page.get("Clusters", []) if c.get("Name") == name]
            marker = page.get("Marker")
            if not marker:
                return found

    def active_steps(self, cluster_id: str) -> list[dict[str, Any]]:
        """Return the cluster's PENDING/RUNNING/CANCEL_PENDING steps."""
        steps, marker = [], None
        while True:
            kwargs: dict[str, Any] = {"ClusterId": cluster_id, "StepStates": list(ACTIVE_STEP_STATES)}
            if marker:
                kwargs["Marker"] = marker
            page = self.call("list_steps", **kwargs)
            steps += page.get("Steps", [])
            marker = page.get("Marker")
            if not marker:
                return steps

    def usable(self, cluster_id: str, workload: str, digest: str, needed_steps: int) -> tuple[bool, str]:
        """Tell whether a cluster is active, of this workload and hash, with room for the steps."""
        cluster = self.call("describe_cluster", ClusterId=cluster_id)["Cluster"]
        state = cluster.get("Status", {}).get("State")
        tags = {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}
        self._log_uris[cluster_id] = cluster.get("LogUri")
        if state not in ACTIVE_CLUSTER_STATES:
            return False, f"{cluster_id} is {state}"
        if tags.get(TAG_WORKLOAD) != workload or tags.get(TAG_PROFILE_HASH) != digest:
            return False, (
                f"{cluster_id} has workload {tags.get(TAG_WORKLOAD)!r} hash "
                f"{tags.get(TAG_PROFILE_HASH)!r}, want {workload!r} {digest!r}"
            )
        active = len(self.active_steps(cluster_id))
        if active + needed_steps > MAX_ACTIVE_STEPS:
            return False, f"{cluster_id} has {active} active steps, no room for {needed_steps}"
        return True, f"{cluster_id} is {state} with {active} active steps"

    def find_reusable(
        self, workload: str, request: Mapping[str, Any], needed_steps: int, hint: str | None = None
    ) -> ClusterChoice | None:
        """Return a reusable cluster for the request, checking ``hint`` (a known id) first."""
        digest = request_hash(request)
        candidates = [hint] if hint else []
        if not candidates:
            listed = sorted(
                self.clusters_named(str(request["Name"])),
                key=lambda c: str(c.get("Status", {}).get("Timeline", {}).get("CreationDateTime", "")),
            )
            candidates = [c["Id"] for c in listed]
        for cluster_id in candidates:
            ok, why = self.usable(cluster_id, workload, digest, needed_steps)
            self.log.info("Workload %s: cluster %s", workload, why)
            if ok:
                return ClusterChoice(cluster_id, False, why, self._log_uris.get(cluster_id))
        return None

    def create(self, request: Mapping[str, Any]) -> str:
        """Create a cluster from the request; return its id."""
        cluster_id = str(self.call("run_job_flow", **request)["JobFlowId"])
        self._log_uris[cluster_id] = request.get("LogUri")
        return cluster_id

    def ensure_cluster(
        self,
        workload: str,
        request: Mapping[str, Any],
        *,
        lease: PoolLease,
        registry: Storage,
        registry_uri: str,
        needed_steps: int = 1,
    ) -> ClusterChoice:
        """Reuse the workload's cluster for this request or create one, under the lease.

        :param registry: storage holding the last created cluster of the workload.
        :param registry_uri: that document's URI.
        """
        with lease.hold(workload):
            hint = None
            if registry.exists(registry_uri):
                note = json.loads(registry.read_text(registry_uri))
                if note.get("profile_hash") == request_hash(request):
                    hint = note.get("cluster_id")
            choice = self.find_reusable(workload, request, needed_steps, hint) if hint else None
            choice = choice or self.find_reusable(workload, request, needed_steps)
            if choice:
                return choice
            cluster_id = self.create(request)
            registry.write_text(
                registry_uri,
                json.dumps(
                    {
                        "cluster_id": cluster_id,
                        "workload": workload,
                        "profile_hash": request_hash(request),
                        "name": request["Name"],
                        "created_at": datetime.now(UTC).isoformat(),
                    }
                ),
            )
            self.log.info("Workload %s: created cluster %s (%s)", workload, cluster_id, request["Name"])
            return ClusterChoice(cluster_id, True, "no reusable cluster", request.get("LogUri"))

    # -- steps ----------------------------------------------------------------------------
    def add_steps(self, cluster_id: str, steps: Sequence[Mapping[str, Any]]) -> list[str]:
        """Submit steps in as few AddJobFlowSteps calls as possible (256 per call)."""
        ids: list[str] = []
        for i in range(0, len(steps), MAX_STEPS_PER_ADD_CALL):
            chunk = list(steps[i : i + MAX_STEPS_PER_ADD_CALL])
            ids += self.call("add_job_flow_steps", JobFlowId=cluster_id, Steps=chunk)["StepIds"]
        return ids

    def log_uri(self, cluster_id: str) -> str | None:
        """Return the cluster's log URI (cached from DescribeCluster)."""
        if cluster_id not in self._log_uris:
            self._log_uris[cluster_id] = self.call("describe_cluster", ClusterId=cluster_id)["Cluster"].get(
                "LogUri"
            )
        return self._log_uris[cluster_id]

    def step_states(
        self, cluster_id: str, step_ids: Sequence[str], log_uri: str | None = None
    ) -> list[StepStatus]:
        """Return the steps' states from the cluster's step list (newest first, paged until found).

        One ListSteps call per cluster covers up to 50 steps; StepIds filters are capped at
        10 per call, so the whole list is read instead.
        """
        wanted = set(step_ids)
        found: dict[str, StepStatus] = {}
        marker = None
        while wanted - set(found):
            kwargs: dict[str, Any] = {"ClusterId": cluster_id}
            if marker:
                kwargs["Marker"] = marker
            page = self.call("list_steps", **kwargs)
            for step in page.get("Steps", []):
                if step["Id"] in wanted:
                    found[step["Id"]] = StepStatus.from_api(step, log_uri, cluster_id)
            marker = page.get("Marker")
            if not marker:
                break
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


def next_poll_delay(polls: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Return the wait before poll number ``polls + 1``: growing by 1.5x, capped, +-20% jitter."""
    return min(cap, base * 1.5**polls) * (rng or random).uniform(0.8, 1.2)


# -- Spark steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeLocation:
    """Where the ``spark_jobs`` package is staged for a cluster."""

    root: str

    @property
    def py_files(self) -> str:
        """Return the zipped package's URI (``--py-files``)."""
        return join_uri(self.root, "spark_jobs.zip")

    def script(self, name: str) -> str:
        """Return a job script's URI."""
        return join_uri(self.root, name)


def spark_step(
    job: SparkJob, code: CodeLocation, *, action_on_failure: str = "CONTINUE", on_demand_only: bool = False
) -> dict[str, Any]:
    """Return the AddJobFlowSteps entry that runs ``job`` with spark-submit in cluster mode.

    :param on_demand_only: pin executors (and the AM) to ON_DEMAND-labelled nodes: how a step
        lost to Spot reclamation is retried.
    """
    conf = dict(job.conf)
    name = job.name
    if on_demand_only:
        conf |= {
            "spark.yarn.executor.nodeLabelExpression": ON_DEMAND_LABEL,
            "spark.yarn.am.nodeLabelExpression": ON_DEMAND_LABEL,
        }
        name += ON_DEMAND_RETRY_SUFFIX
    args = ["spark-submit", "--deploy-mode", "cluster", "--py-files", code.py_files]
    for key, value in sorted(conf.items()):
        args += ["--conf", f"{key}={value}"]
    args += [code.script(job.script), *job.args]
    return {
        "Name": name,
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def outcome_of(status: StepStatus, seconds: float) -> JobOutcome:
    """Turn a final step state into the backend-neutral outcome."""
    if status.succeeded:
        return JobOutcome(status.name, "SUCCEEDED", seconds, status.log_file)
    reason = status.reason or status.state
    if status.message:
        reason = f"{reason}: {status.message}"
    return JobOutcome(
        status.name, "FAILED", seconds, status.log_file, f"step {status.step_id} {status.state}: {reason}"
    )


# -- the compute backend --------------------------------------------------------------------
class EmrComputeBackend(ComputeBackend):
    """Run Spark jobs as steps on the workload's pooled EMR cluster.

    Asynchronous: operators call :meth:`submit_jobs` and defer on :meth:`wait_trigger`;
    :meth:`run_jobs` is the blocking equivalent (non-deferrable operators, scripts).
    """

    name = "emr"
    asynchronous = True

    def __init__(
        self,
        settings: WarpSpeedSettings,
        *,
        profiles_file: str | Path | None = None,
        hook: EmrPoolHook | None = None,
        lease: PoolLease | None = None,
        s3_client: Any = None,
    ) -> None:
        self.settings = settings
        self.profiles_file = Path(profiles_file or DEFAULT_PROFILES_FILE)
        self._hook = hook
        self._lease = lease
        self._s3 = s3_client

    @cached_property
    def hook(self) -> EmrPoolHook:
        """Return the pool hook (built lazily)."""
        return self._hook or EmrPoolHook(
            aws_conn_id=self.settings.aws_conn_id, region_name=self.settings.catalog.region
        )

    @cached_property
    def s3(self) -> Any:
        """Return the S3 client (code staging and the lease)."""
        if self._s3 is not None:
            return self._s3
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.settings.aws_conn_id).get_conn()

    @cached_property
    def storage(self) -> Storage:
        """Return the storage under the configured prefix."""
        return storage_for(self.settings.storage_prefix, lambda: self.s3)

    @cached_property
    def lease(self) -> PoolLease:
        """Return the spin-or-reuse lease for the storage prefix."""
        return self._lease or lease_for(self.settings.storage_prefix, lambda: self.s3)

    @cached_property
    def profiles(self) -> ProfileCatalog:
        """Load the cluster profiles."""
        return ProfileCatalog.load(self.profiles_file)

    def request_for(self, workload: str, profile: str) -> dict[str, Any]:
        """Build the RunJobFlow request of ``workload`` on ``profile``."""
        return build_run_job_flow_request(
            self.profiles[profile],
            workload,
            catalog=self.settings.catalog,
            variables={"storage_prefix": self.settings.storage_prefix},
        )

    def registry_uri(self, workload: str) -> str:
        """Return where the pool records a workload's last created cluster."""
        return join_uri(self.settings.storage_prefix, "emr", "pool", f"{workload}.json")

    def ensure_cluster(self, workload: str, profile: str, needed_steps: int = 1) -> ClusterRef:
        """Reuse or create the workload's cluster (see :class:`EmrPoolHook`)."""
        request = self.request_for(workload, profile)
        choice = self.hook.ensure_cluster(
            workload,
            request,
            lease=self.lease,
            registry=self.storage,
            registry_uri=self.registry_uri(workload),
            needed_steps=needed_steps,
        )
        return ClusterRef(
            workload=workload, cluster_id=choice.cluster_id, backend=self.name, created=choice.created
        )

    def ensure_cluster_for(self, workload: str, profile: str, needed_steps: int) -> ClusterRef:
        """Reuse or create the workload's cluster with room for ``needed_steps`` steps."""
        return self.ensure_cluster(workload, profile, needed_steps)

    def action_on_failure(self, cluster: ClusterRef) -> str:
        """Return the ActionOnFailure for steps on this cluster (CONTINUE: steps run side by side)."""
        return "CONTINUE"

    @cached_property
    def code(self) -> CodeLocation:
        """Stage the ``spark_jobs`` package (content-addressed) and return where it is."""
        from warpspeed.hooks.local_spark import package_spark_jobs, spark_jobs_dir

        with tempfile.TemporaryDirectory() as tmp:
            zip_path = package_spark_jobs(Path(tmp) / "spark_jobs.zip")
            scripts = sorted(spark_jobs_dir().glob("*.py"))
            digest = hashlib.sha256()
            for path in [*scripts]:
                digest.update(path.name.encode() + path.read_bytes())
            root = join_uri(self.settings.storage_prefix, "code", digest.hexdigest()[:16])
            files = {"spark_jobs.zip": zip_path.read_bytes()} | {p.name: p.read_bytes() for p in scripts}
        if urlparse(root).scheme not in ("s3", "s3a"):
            raise WarpSpeedConfigError(
                f"[warpspeed] storage_prefix={self.settings.storage_prefix!r}: the emr backend stages "
                "code and "
                "logs on S3; use an s3:// prefix"
            )
        parsed = urlparse(root)
        for name, body in files.items():
            key = f"{parsed.path.strip('/')}/{name}"
            try:
                self.s3.head_object(Bucket=parsed.netloc, Key=key)
            except ClientError:
                self.s3.put_object(Bucket=parsed.netloc, Key=key, Body=body)
        return CodeLocation(root)

    def steps_for(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[dict[str, Any]]:
        """Return the step definitions of ``jobs``."""
        return [
            spark_step(
                j, self.code, action_on_failure=self.action_on_failure(cluster), on_demand_only=on_demand_only
            )
            for j in jobs
        ]

    def submit_jobs(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[str]:
        """Submit the jobs as steps; adopt identical steps still in flight from an earlier attempt."""
        steps = self.steps_for(cluster, jobs, on_demand_only=on_demand_only)
        in_flight = {s.get("Name"): s["Id"] for s in self.hook.active_steps(cluster.cluster_id)}
        ids: list[str | None] = [in_flight.get(s["Name"]) for s in steps]
        new = [s for s, i in zip(steps, ids, strict=True) if i is None]
        if len(new) < len(steps):
            self.hook.log.info(
                "Adopting %d steps still running from an earlier attempt", len(steps) - len(new)
            )
        created = iter(self.hook.add_steps(cluster.cluster_id, new) if new else [])
        return [i if i is not None else next(created) for i in ids]

    def wait_trigger(
        self, cluster: ClusterRef, job_ids: Sequence[str], *, poll_interval: float = 30.0
    ) -> Any:
        """Return the trigger that waits for the steps in the triggerer."""
        from warpspeed.triggers.emr_pool import EmrStepsTrigger

        return EmrStepsTrigger(
            cluster_id=cluster.cluster_id,
            step_ids=list(job_ids),
            aws_conn_id=self.settings.aws_conn_id,
            region_name=self.settings.catalog.region,
            log_uri=self.hook.log_uri(cluster.cluster_id),
            poll_interval=poll_interval,
        )

    def run_jobs(self, cluster: ClusterRef, jobs: Sequence[SparkJob]) -> list[JobOutcome]:
        """Submit, wait (blocking) and retry Spot-lost steps once on on-demand capacity."""
        started = time.monotonic()
        ids = self.submit_jobs(cluster, jobs)
        log_uri = self.hook.log_uri(cluster.cluster_id)
        states = self.hook.wait_for_steps(cluster.cluster_id, ids, log_uri=log_uri)
        lost = [i for i, s in enumerate(states) if s.lost_to_spot]
        if lost:
            self.hook.log.warning(
                "%d steps lost to Spot reclamation; retrying once on on-demand nodes", len(lost)
            )
            retry_ids = self.submit_jobs(cluster, [jobs[i] for i in lost], on_demand_only=True)
            for i, status in zip(
                lost, self.hook.wait_for_steps(cluster.cluster_id, retry_ids, log_uri=log_uri), strict=True
            ):
                states[i] = status
        seconds = time.monotonic() - started
        return [outcome_of(s, seconds) for s in states]
