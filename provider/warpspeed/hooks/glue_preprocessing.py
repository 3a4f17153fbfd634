"""Plan, run and publish incremental refreshes of the Tier-2 features from raw sources.

A refresh is planned from two inputs: the partitions named by the triggering asset events
(``{"partitions": [...]}`` in their extra) and the raw sources' partition listing compared with
a watermark (the fingerprint of every partition already processed, kept in a small state
document under ``<storage>/preprocessing/state/``). The plan names the changed date partitions
per source; ``spark_jobs/build_features.py`` reads only those. The job runs as an AWS Glue 5
job in production (:class:`GlueJobSettings`, :class:`ConcurrencyAwareGlueJobHook`) or with local
``spark-submit`` through the compute backend; afterwards :meth:`GluePreprocessingHook.publish`
checks the job's summary, moves the watermark and returns the features asset event's extra.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
from airflow.sdk import BaseHook
from botocore.exceptions import ClientError

from warpspeed.exceptions import ComputeError, WarpSpeedConfigError
from warpspeed.hooks.compute import SparkJob, compute_backend_for
from warpspeed.raw_sources import RawSource, list_partitions, raw_source
from warpspeed.settings import WarpSpeedSettings
from warpspeed.storage import Storage, join_uri, storage_for
from warpspeed.tables import FEATURES_TABLE

BUILD_SCRIPT = "build_features.py"
PLAN_SCHEMA = "warpspeed.features_plan/v1"
SUMMARY_SCHEMA = "warpspeed.features_result/v1"
STATE_SCHEMA = "warpspeed.features_state/v1"
PREPROCESSING_WORKLOAD = "preprocessing"
ACTIVITY_WINDOW_DAYS = 30
GROUP_OF_SOURCE = {"engagement_events": "activity", "intent_signals": "activity", "firmographics": "firmographics"}
PREPROCESSING_BACKENDS = ("local", "glue")
LOCAL_SHUFFLE_PARTITIONS = 8  # daily aggregates are small; Spark's 200 default only adds task overhead


def run_key(run_id: str) -> str:
    """Return a storage-safe folder name for a DAG run id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_") or "run"


def preprocessing_backend(settings: WarpSpeedSettings, override: str | None = None) -> str:
    """Return where preprocessing runs: ``glue`` or ``local``.

    ``[warpspeed] preprocessing_backend`` (or ``AIRFLOW__WARPSPEED__PREPROCESSING_BACKEND``)
    decides when set; otherwise ``compute_backend = emr`` means Glue and ``local`` local Spark.
    """
    if override is None:
        from airflow.configuration import conf

        override = conf.get("warpspeed", "preprocessing_backend", fallback=None) or None
    value = override or ("glue" if settings.compute_backend == "emr" else "local")
    if value not in PREPROCESSING_BACKENDS:
        raise WarpSpeedConfigError(
            f"[warpspeed] preprocessing_backend={value!r}: use one of {', '.join(PREPROCESSING_BACKENDS)}"
        )
    return value


@dataclass(frozen=True)
class RefreshState:
    """The watermark: what each source's partitions looked like when last processed."""

    partitions: dict[str, dict[str, str]] = field(default_factory=dict)
    as_of: str | None = None
    run_key: str | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RefreshState:
        """Read a state document."""
        if doc.get("schema") != STATE_SCHEMA:
            raise WarpSpeedConfigError(f"state document schema {doc.get('schema')!r} is not {STATE_SCHEMA}")
        return cls(partitions={k: dict(v) for k, v in doc.get("partitions", {}).items()},
                   as_of=doc.get("as_of"), run_key=doc.get("run_key"))

    def to_doc(self) -> dict[str, Any]:
        """Return the state as a JSON-able document."""
        return {"schema": STATE_SCHEMA, "partitions": self.partitions, "as_of": self.as_of,
                "run_key": self.run_key, "updated_at": datetime.now(UTC).isoformat()}


@dataclass(frozen=True)
class RefreshPlan:
    """What one refresh reprocesses.

    :param changed: per source, the date partitions to reprocess (sorted).
    :param listing: per source, ``{dt: fingerprint}`` of every partition seen (the next watermark).
    :param as_of: newest day of the activity sources (the rolling windows end there).
    :param previous_as_of: the watermark's ``as_of`` (None on the first refresh).
    :param skipped: per source, changed partitions left out because they are older than any window.
    :param missing: partitions named by asset events that do not exist in storage.
    """

    sources: tuple[str, ...]
    changed: dict[str, list[str]]
    listing: dict[str, dict[str, str]]
    as_of: str | None
    previous_as_of: str | None
    skipped: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """Return the feature groups this plan refreshes (``activity``, ``firmographics``)."""
        return sorted({GROUP_OF_SOURCE[s] for s in self.sources})

    @property
    def has_work(self) -> bool:
        """Tell whether any partition needs reprocessing."""
        return any(self.changed.values())

    def changed_partitions(self) -> list[str]:
        """Return the changed partitions as ``<source>/dt=<day>`` strings."""
        return [f"{s}/dt={d}" for s, days in sorted(self.changed.items()) for d in days]


def plan_refresh(
    sources: Sequence[str],
    listing: Mapping[str, Mapping[str, str]],
    state: RefreshState,
    hinted: Mapping[str, Iterable[str]] | None = None,
    *,
    full: bool = False,
) -> RefreshPlan:
    """Decide which date partitions to reprocess (pure).

    A partition is changed when it is new, its files differ from the watermark's, an asset
    event named it, or ``full`` is set. Activity partitions older than the 30-day window of the
    new ``as_of`` are skipped: they cannot change any feature.
    """
    hinted = hinted or {}
    activity = [s for s in sources if GROUP_OF_SOURCE[s] == "activity"]
    days = [d for s in activity for d in listing.get(s, {})]
    as_of = max(days, default=None)
    if as_of is not None and state.as_of is not None:
        as_of = max(as_of, state.as_of)
    floor = (date.fromisoformat(as_of) - timedelta(days=ACTIVITY_WINDOW_DAYS - 1)).isoformat() if as_of else None
    changed: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    for source in sources:
        seen = state.partitions.get(source, {})
        current = listing.get(source, {})
        named = set(hinted.get(source, ()))
        missing_days = sorted(named - set(current))
        if missing_days:
            missing[source] = missing_days
        todo = sorted(d for d, fp in current.items() if full or d in named or seen.get(d) != fp)
        if GROUP_OF_SOURCE[source] == "activity" and floor is not None:
            skipped_days = [d for d in todo if d < floor]
            if skipped_days:
                skipped[source] = skipped_days
            todo = [d for d in todo if d >= floor]
        changed[source] = todo
    return RefreshPlan(
        sources=tuple(sources), changed=changed, listing={s: dict(listing.get(s, {})) for s in sources},
        as_of=as_of if activity else None, previous_as_of=state.as_of if activity else None,
        skipped=skipped, missing=missing,
    )


@dataclass(frozen=True)
class GlueJobSettings:
    """The production Glue job that runs ``build_features.py`` (from ``config/preprocessing.yaml``).

    :param job_name: one Glue job shared by every preprocessing DAG; with ``max_concurrent_runs``
        1 the refreshes of one table never overlap (a second start waits and retries).
    :param script_bucket: S3 bucket for the uploaded script and ``spark_jobs.zip``.
    :param concurrency_retry_max_attempts: starts tried while Glue says ConcurrentRunsExceeded.
    """

    job_name: str = "warpspeed-build-features"
    iam_role_name: str | None = None
    iam_role_arn: str | None = None
    script_bucket: str | None = None
    scripts_prefix: str = "warpspeed/glue"
    glue_version: str = "5.0"
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_concurrent_runs: int = 1
    concurrency_retry_initial_seconds: float = 30.0
    concurrency_retry_max_seconds: float = 600.0
    concurrency_retry_max_attempts: int = 8
    waiter_delay: int = 30
    extra_arguments: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", self.job_name):
            raise WarpSpeedConfigError(f"glue.job_name {self.job_name!r} must be 1-255 letters, digits, _ . -")
        if self.iam_role_name and self.iam_role_arn:
            raise WarpSpeedConfigError("glue: set iam_role_name or iam_role_arn, not both")
        if float(self.glue_version) < 5.0:
            raise WarpSpeedConfigError(f"glue.glue_version {self.glue_version!r}: the job needs Glue 5.0 or later")
        if self.number_of_workers < 2:
            raise WarpSpeedConfigError("glue.number_of_workers must be at least 2 (a driver and an executor)")
        if self.max_concurrent_runs < 1:
            raise WarpSpeedConfigError("glue.max_concurrent_runs must be at least 1")
        if self.concurrency_retry_max_attempts < 1 or self.concurrency_retry_initial_seconds <= 0:
            raise WarpSpeedConfigError("glue.concurrency_retry_* must be positive")

    @classmethod
    def load(cls, path: str | Path) -> GlueJobSettings:
        """Read the ``glue`` section of the preprocessing YAML."""
        import yaml

        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        section = doc.get("glue") or {}
        unknown = sorted(set(section) - set(cls.__dataclass_fields__))
        if unknown:
            raise WarpSpeedConfigError(f"{path}: unknown glue keys {', '.join(unknown)}")
        return cls(**section)

    def require_bucket(self) -> str:
        """Return the script bucket, or say how to configure it."""
        if not self.script_bucket:
            raise WarpSpeedConfigError("glue.script_bucket is empty: set it in dags/config/preprocessing.yaml")
        return self.script_bucket

    def script_uri(self, name: str) -> str:
        """Return the S3 URI of an uploaded artifact."""
        return f"s3://{self.require_bucket()}/{self.scripts_prefix.strip('/')}/{name}"

    def create_job_kwargs(self, catalog_conf: Mapping[str, str]) -> dict[str, Any]:
        """Return the Glue ``CreateJob``/``UpdateJob`` fields: Glue 5, Iceberg, the catalog conf."""
        conf_items = [f"{k}={v}" for k, v in sorted(catalog_conf.items())]
        default_arguments = {
            "--datalake-formats": "iceberg",
            "--conf": " --conf ".join(conf_items),
            "--extra-py-files": self.script_uri("spark_jobs.zip"),
            "--enable-metrics": "true",
            "--enable-continuous-cloudwatch-log": "true",
            "--job-language": "python",
            **self.extra_arguments,
        }
        return {
            "GlueVersion": self.glue_version,
            "WorkerType": self.worker_type,
            "NumberOfWorkers": self.number_of_workers,
            "Timeout": self.timeout_minutes,
            "Command": {"Name": "glueetl", "ScriptLocation": self.script_uri(BUILD_SCRIPT), "PythonVersion": "3"},
            "DefaultArguments": default_arguments,
            "Tags": {"warpspeed:role": "preprocessing"},
        }


def is_concurrent_runs_exceeded(error: BaseException) -> bool:
    """Tell whether Glue refused a start because the job already runs its maximum."""
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "ConcurrentRunsExceededException"
    )


class ConcurrencyAwareGlueJobHook(GlueJobHook):
    """The Amazon provider's Glue hook, retrying a start refused with ConcurrentRunsExceeded.

    Waits grow exponentially (with jitter) from ``concurrency_retry_initial_seconds`` up to
    ``concurrency_retry_max_seconds``; after ``concurrency_retry_max_attempts`` starts the error
    is raised and the task's own retries take over.
    """

    def __init__(
        self,
        *args: Any,
        concurrency_retry_initial_seconds: float = 30.0,
        concurrency_retry_max_seconds: float = 600.0,
        concurrency_retry_max_attempts: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.concurrency_retry_initial_seconds = concurrency_retry_initial_seconds
        self.concurrency_retry_max_seconds = concurrency_retry_max_seconds
        self.concurrency_retry_max_attempts = concurrency_retry_max_attempts
        self.concurrency_waits: list[float] = []

    def initialize_job(self, script_arguments: dict | None = None, run_kwargs: dict | None = None) -> dict[str, str]:
        """Create or update the job and start a run, waiting while its concurrency is exhausted."""
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        retrying = Retrying(
            retry=retry_if_exception(is_concurrent_runs_exceeded),
            wait=wait_exponential_jitter(initial=self.concurrency_retry_initial_seconds,
                                         max=self.concurrency_retry_max_seconds,
                                         jitter=self.concurrency_retry_initial_seconds / 2),
            stop=stop_after_attempt(self.concurrency_retry_max_attempts),
            before_sleep=self._log_concurrency_wait,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return super().initialize_job(script_arguments, run_kwargs)
        raise RuntimeError("unreachable: tenacity re-raises the last error")

    def _log_concurrency_wait(self, retry_state: Any) -> None:
        wait = float(retry_state.next_action.sleep) if retry_state.next_action else 0.0
        self.concurrency_waits.append(wait)
        self.log.warning("Glue job %s already runs %s times (ConcurrentRunsExceeded); start %d again in %.0f s",
                         self.job_name, self.concurrent_run_limit, retry_state.attempt_number + 1, wait)


class GluePreprocessingHook(BaseHook):
    """Plan, run (locally) and publish feature refreshes.

    :param settings: Warp Speed settings (storage prefix, catalog, compute backend).
    :param storage: storage under the prefix (default: from the prefix's scheme).
    """

    def __init__(self, settings: WarpSpeedSettings, storage: Storage | None = None) -> None:
        super().__init__()
        self.settings = settings
        self._storage = storage

    @cached_property
    def storage(self) -> Storage:
        """Return the storage under the configured prefix."""
        return self._storage or storage_for(self.settings.storage_prefix)

    def state_uri(self, name: str) -> str:
        """Return the watermark document of a refresh stream (one per DAG)."""
        return join_uri(self.settings.storage_prefix, "preprocessing", "state", f"{name}.json")

    def run_uri(self, name: str, key: str, document: str) -> str:
        """Return a document of one refresh run."""
        return join_uri(self.settings.storage_prefix, "preprocessing", "runs", name, key, document)

    def read_state(self, name: str) -> RefreshState:
        """Return the watermark (empty before the first refresh)."""
        try:
            return RefreshState.from_doc(json.loads(self.storage.read_text(self.state_uri(name))))
        except FileNotFoundError:
            return RefreshState()

    def listing(self, sources: Sequence[RawSource]) -> dict[str, dict[str, str]]:
        """Return ``{source: {dt: fingerprint}}`` from the raw storage."""
        return {s.key: list_partitions(self.storage, self.settings.storage_prefix, s) for s in sources}

    def plan(
        self,
        name: str,
        run_id: str,
        sources: Sequence[str],
        hinted: Mapping[str, Iterable[str]] | None = None,
        *,
        full: bool = False,
    ) -> tuple[str, RefreshPlan]:
        """Plan a refresh, write the plan document and return ``(plan_uri, plan)``."""
        raw = [raw_source(s) for s in sources]
        plan = plan_refresh(sources, self.listing(raw), self.read_state(name), hinted, full=full)
        key = run_key(run_id)
        plan_uri = self.run_uri(name, key, "plan.json")
        doc = {
            "schema": PLAN_SCHEMA,
            "name": name,
            "run_key": key,
            "groups": plan.groups,
            "raw_root": join_uri(self.settings.storage_prefix, "raw"),
            "changed": plan.changed,
            "listing": plan.listing,
            "as_of": plan.as_of,
            "previous_as_of": plan.previous_as_of,
            "skipped": plan.skipped,
            "missing": plan.missing,
            "features_table": FEATURES_TABLE,
            "summary_uri": self.run_uri(name, key, "summary.json"),
        }
        self.storage.write_text(plan_uri, json.dumps(doc, indent=1, sort_keys=True))
        for source, days in plan.missing.items():
            self.log.warning("Asset events named %s partitions that do not exist: %s", source, ", ".join(days))
        for source, days in plan.skipped.items():
            self.log.info("Skipping %d %s partitions older than the %d-day window: %s",
                          len(days), source, ACTIVITY_WINDOW_DAYS, ", ".join(days))
        for source in sources:
            self.log.info("%s: %d partitions, %d changed %s", source, len(plan.listing[source]),
                          len(plan.changed[source]), plan.changed[source])
        return plan_uri, plan

    def read_plan(self, plan_uri: str) -> dict[str, Any]:
        """Return a plan document."""
        doc: dict[str, Any] = json.loads(self.storage.read_text(plan_uri))
        if doc.get("schema") != PLAN_SCHEMA:
            raise WarpSpeedConfigError(f"{plan_uri} is not a {PLAN_SCHEMA} document")
        return doc

    def ensure_tables(self) -> None:
        """Create the Warp Speed tables (the features table) if they are missing."""
        from warpspeed.tables import ensure_tables

        created = ensure_tables(self.settings.catalog.load())
        if created:
            self.log.info("Created tables %s", ", ".join(created))

    def build_job(self, plan_uri: str) -> SparkJob:
        """Return the Spark job that runs a plan."""
        doc = self.read_plan(plan_uri)
        return SparkJob(
            name=f"build_features-{doc['name']}-{doc['run_key']}",
            script=BUILD_SCRIPT,
            args=("--plan-uri", plan_uri, "--catalog", self.settings.catalog.name),
            conf={"spark.sql.shuffle.partitions": str(LOCAL_SHUFFLE_PARTITIONS)},
        )

    def run_local(self, plan_uri: str) -> str:
        """Run a plan with local ``spark-submit`` through the compute backend; return the summary URI."""
        self.ensure_tables()
        backend = compute_backend_for(replace(self.settings, compute_backend="local"))
        cluster = backend.ensure_cluster(PREPROCESSING_WORKLOAD, PREPROCESSING_WORKLOAD)
        job = self.build_job(plan_uri)
        (outcome,) = backend.run_jobs(cluster, [job])
        if not outcome.succeeded:
            raise ComputeError(f"{job.name} failed: {outcome.reason} (log: {outcome.log_uri})")
        return str(self.read_plan(plan_uri)["summary_uri"])

    def upload_artifacts(self, glue: GlueJobSettings, s3_hook: Any) -> str:
        """Upload ``spark_jobs.zip`` (the transforms the script imports) for Glue; return its URI."""
        from warpspeed.hooks.local_spark import package_spark_jobs

        bucket = glue.require_bucket()
        zip_path = package_spark_jobs(self.settings.home / "build" / "glue" / "spark_jobs.zip")
        key = f"{glue.scripts_prefix.strip('/')}/spark_jobs.zip"
        s3_hook.load_file(str(zip_path), key, bucket_name=bucket, replace=True)
        return f"s3://{bucket}/{key}"

    def read_summary(self, plan_uri: str) -> dict[str, Any]:
        """Return the job's summary of a plan, checking that it answers this plan."""
        plan = self.read_plan(plan_uri)
        try:
            summary: dict[str, Any] = json.loads(self.storage.read_text(plan["summary_uri"]))
        except FileNotFoundError:
            raise ComputeError(f"the features job wrote no summary at {plan['summary_uri']}") from None
        if summary.get("schema") != SUMMARY_SCHEMA or summary.get("run_key") != plan["run_key"]:
            raise ComputeError(f"{plan['summary_uri']} is not the summary of run {plan['run_key']}")
        if summary.get("status") != "succeeded":
            raise ComputeError(f"the features job reported status {summary.get('status')!r}")
        return summary

    def publish(self, plan_uri: str) -> dict[str, Any]:
        """Move the watermark past the processed partitions; return the features asset event's extra."""
        plan = self.read_plan(plan_uri)
        summary = self.read_summary(plan_uri)
        state = self.read_state(plan["name"])
        partitions = {s: dict(state.partitions.get(s, {})) for s in set(state.partitions) | set(plan["listing"])}
        for source, listing in plan["listing"].items():
            partitions[source] = dict(listing)  # processed now, or skipped as too old to matter
        new_state = RefreshState(partitions=partitions, as_of=plan["as_of"] or state.as_of, run_key=plan["run_key"])
        self.storage.write_text(self.state_uri(plan["name"]), json.dumps(new_state.to_doc(), indent=1, sort_keys=True))
        changed = [f"{s}/dt={d}" for s, days in sorted(plan["changed"].items()) for d in days]
        feature_partitions = [f"tenant_id={t}" for t in summary.get("changed_tenants", [])]
        self.log.info("Features snapshot %s: %d rows changed in %s from %s", summary.get("features_snapshot_id"),
                      summary.get("changed_rows", 0), feature_partitions or "no partition", changed)
        return {
            "snapshot_id": summary.get("features_snapshot_id"),
            "changed_partitions": changed,
            "feature_partitions": feature_partitions,
            "changed_rows": summary.get("changed_rows", 0),
            "as_of": summary.get("as_of"),
            "groups": plan["groups"],
            "summary_uri": plan["summary_uri"],
        }


def spark_jobs_script(name: str = BUILD_SCRIPT) -> str:
    """Return the local path of a ``spark_jobs/`` script (GlueJobOperator uploads it)."""
    from warpspeed.hooks.local_spark import spark_jobs_dir

    path = spark_jobs_dir() / name
    if not path.is_file():
        raise WarpSpeedConfigError(f"{path} is missing")
    return os.fspath(path)

