"""Plan, run (locally) and publish incremental refreshes of the Tier-2 features from raw sources.

The plan (:func:`warpspeed.preprocessing.refresh.plan_refresh`) names the changed date partitions per
source; ``spark_jobs/build_features.py`` reads only those. The job runs as an AWS Glue 5 job in
production (:class:`~warpspeed.config.glue_job.GlueJobSettings`,
:class:`~warpspeed.hooks.glue.ConcurrencyAwareGlueJobHook`) or with local
``spark-submit`` through the compute backend; afterwards :meth:`FeatureRefreshService.publish`
checks the job's summary, moves the watermark and returns the features asset event's extra.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

from warpspeed.compute.base import SparkJob
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.compute.staging import ZIP_NAME, stage_to_s3
from warpspeed.config.glue_job import BUILD_SCRIPT, GlueJobSettings
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.exceptions import ComputeError, WarpSpeedConfigError
from warpspeed.ledger.tables import FEATURES_TABLE
from warpspeed.preprocessing.raw_sources import RawSource, list_partitions, raw_source
from warpspeed.preprocessing.refresh import ACTIVITY_WINDOW_DAYS, RefreshPlan, RefreshState, plan_refresh
from warpspeed.storage.documents import Storage, join_uri, run_key

PLAN_SCHEMA = "warpspeed.features_plan/v1"
SUMMARY_SCHEMA = "warpspeed.features_result/v1"
PREPROCESSING_WORKLOAD = "preprocessing"
LOCAL_SHUFFLE_PARTITIONS = 8  # daily aggregates are small; Spark's 200 default only adds task overhead


log = logging.getLogger(__name__)


class FeatureRefreshService:
    """Plan, run (locally) and publish feature refreshes.

    :param settings: Warp Speed settings (storage prefix, catalog, compute backend).
    :param storage: storage under the prefix (default: from the prefix's scheme).
    """

    def __init__(self, settings: WarpSpeedSettings, storage: Storage | None = None) -> None:
        self.settings = settings
        self._storage = storage

    @cached_property
    def storage(self) -> Storage:
        """Return the storage under the configured prefix."""
        return self._storage or self.settings.storage()

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
            log.warning("Asset events named %s partitions that do not exist: %s", source, ", ".join(days))
        for source, days in plan.skipped.items():
            log.info("Skipping %d %s partitions older than the %d-day window: %s",
                          len(days), source, ACTIVITY_WINDOW_DAYS, ", ".join(days))
        for source in sources:
            log.info("%s: %d partitions, %d changed %s", source, len(plan.listing[source]),
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
        from warpspeed.ledger.tables import ensure_tables

        created = ensure_tables(self.settings.catalog.load())
        if created:
            log.info("Created tables %s", ", ".join(created))

    def build_job(self, plan_uri: str, conf: Mapping[str, str] | None = None) -> SparkJob:
        """Return the Spark job that runs a plan (``conf``: more Spark conf, e.g. the task's lineage parent)."""
        doc = self.read_plan(plan_uri)
        return SparkJob(
            name=f"build_features-{doc['name']}-{doc['run_key']}",
            script=BUILD_SCRIPT,
            args=("--plan-uri", plan_uri, "--catalog", self.settings.catalog.name),
            conf={"spark.sql.shuffle.partitions": str(LOCAL_SHUFFLE_PARTITIONS), **(conf or {})},
        )

    def run_local(self, plan_uri: str, conf: Mapping[str, str] | None = None) -> str:
        """Run a plan with local ``spark-submit`` (the local compute backend); return the summary URI."""
        self.ensure_tables()
        backend = LocalSparkBackend(self.settings)
        cluster = backend.ensure_cluster(PREPROCESSING_WORKLOAD, PREPROCESSING_WORKLOAD)
        job = self.build_job(plan_uri, conf)
        (outcome,) = backend.run_jobs(cluster, [job])
        if not outcome.succeeded:
            raise ComputeError(f"{job.name} failed: {outcome.reason} (log: {outcome.log_uri})")
        return str(self.read_plan(plan_uri)["summary_uri"])

    def upload_artifacts(self, glue: GlueJobSettings, s3_client: Any) -> str:
        """Upload ``spark_jobs.zip`` and the scripts for Glue (one staging for all); return the zip's URI."""
        root = f"s3://{glue.require_bucket()}/{glue.scripts_prefix.strip('/')}"
        return join_uri(stage_to_s3(s3_client, root, replace=True), ZIP_NAME)

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
        log.info("Features snapshot %s: %d rows changed in %s from %s", summary.get("features_snapshot_id"),
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
