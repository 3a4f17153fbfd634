"""Operators that refresh the Tier-2 features from raw sources (see :mod:`warpspeed.preprocessing.service`).

``PlanFeatureRefreshOperator`` -> ``ChoosePreprocessingBackendOperator`` ->
``BuildFeaturesOperator`` (local Spark) or ``GlueBuildFeaturesOperator`` (AWS Glue 5) ->
``PublishFeaturesOperator`` (moves the watermark and emits the features asset event).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import Context, XComArg
from airflow.sdk.exceptions import AirflowSkipException
from botocore.exceptions import ClientError

from warpspeed.compute.staging import spark_jobs_script
from warpspeed.config.glue_job import BUILD_SCRIPT, GlueJobSettings
from warpspeed.config.settings import WarpSpeedSettings, load_settings, preprocessing_backend
from warpspeed.hooks.glue import ConcurrencyAwareGlueJobHook, is_concurrent_runs_exceeded
from warpspeed.lineage.datasets import DatasetUse, Lineage, iceberg_table, storage_dataset
from warpspeed.lineage.spark import parent_conf
from warpspeed.operators._base import WarpSpeedOperator, WarpSpeedSettingsMixin, aws_template_fields
from warpspeed.preprocessing.raw_sources import FEATURES_ASSET_NAME, RAW_SOURCES, parse_partitions, raw_source
from warpspeed.preprocessing.service import FeatureRefreshService


def hinted_partitions(context: Context, sources: Iterable[str]) -> dict[str, list[str]]:
    """Return, per source, the partitions the run's triggering asset events name in their extra."""
    by_asset = {RAW_SOURCES[s].asset_name: s for s in sources}
    events = context.get("triggering_asset_events") or {}
    out: dict[str, set[str]] = {}
    for asset in events:
        source = by_asset.get(getattr(asset, "name", ""))
        if source is None:
            continue
        for event in events[asset]:
            out.setdefault(source, set()).update(parse_partitions(getattr(event, "extra", None)))
    return {s: sorted(days) for s, days in out.items()}


class FeatureRefreshOperator(WarpSpeedOperator):
    """Base of the refresh steps that call the feature refresh service (as S3 component ``preprocess``)."""

    s3_component = "preprocess"

    @cached_property
    def service(self) -> FeatureRefreshService:
        """Build the feature refresh service lazily."""
        return FeatureRefreshService(self.settings, self.storage)


class PlanFeatureRefreshOperator(FeatureRefreshOperator):
    """Decide which raw date partitions to reprocess; return the plan URI (skip when none changed).

    :param refresh_name: the refresh stream (its watermark document); the DAG id by default.
    :param sources: raw source keys this refresh reads (see :mod:`warpspeed.preprocessing.raw_sources`).
    :param full_refresh: reprocess every partition in the window (also the ``full_refresh`` param).
    """

    template_fields = aws_template_fields("refresh_name", "sources")
    ui_color = "#fdebd0"

    def __init__(self, *, sources: Sequence[str], refresh_name: str | None = None,
                 full_refresh: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for source in sources:
            raw_source(source)
        self.sources = list(sources)
        self.refresh_name = refresh_name
        self.full_refresh = full_refresh

    def execute(self, context: Context) -> str:
        """Write the plan document; raise a skip when no partition changed."""
        full = self.full_refresh or bool((context.get("params") or {}).get("full_refresh", False))
        hinted = hinted_partitions(context, self.sources)
        if hinted:
            self.log.info("Triggering asset events name partitions %s", hinted)
        plan_uri, plan = self.service.plan(self.refresh_name or self.dag_id, context["run_id"], self.sources,
                                        hinted, full=full)
        prefix = self.settings.storage_prefix
        self._lineage = Lineage(
            inputs=[DatasetUse(storage_dataset(raw_source(s).location(prefix)), files=len(plan.listing.get(s, {})))
                    for s in self.sources],
            outputs=[DatasetUse(storage_dataset(plan_uri), rows=len(plan.changed_partitions()))],
            run={"refresh": self.refresh_name or self.dag_id, "groups": list(plan.groups)},
        )
        if not plan.has_work:
            raise AirflowSkipException(f"no raw partition of {', '.join(self.sources)} changed since the last refresh")
        self.log.info("Refreshing %s from %d partitions (plan %s)", plan.groups,
                      len(plan.changed_partitions()), plan_uri)
        return plan_uri


class ChoosePreprocessingBackendOperator(BaseBranchOperator):
    """Follow the Glue task or the local Spark task, as ``[warpspeed]`` settings say.

    :param local_task_id: the task that runs the job on local Spark.
    :param glue_task_id: the task that runs the job as an AWS Glue job.
    """

    ui_color = "#fcf3cf"

    def __init__(self, *, local_task_id: str, glue_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.local_task_id = local_task_id
        self.glue_task_id = glue_task_id

    def choose_branch(self, context: Context) -> str:
        """Return the task id of the configured backend."""
        backend = preprocessing_backend(load_settings())
        self.log.info("Preprocessing backend: %s", backend)
        return self.glue_task_id if backend == "glue" else self.local_task_id


class PlanStepOperator(FeatureRefreshOperator):
    """Base of the steps that follow a refresh plan (build, publish): the plan's URI, templated.

    :param plan_uri: the plan from :class:`PlanFeatureRefreshOperator`.
    """

    template_fields = aws_template_fields("plan_uri")

    def __init__(self, *, plan_uri: str | XComArg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_uri = plan_uri


class BuildFeaturesOperator(PlanStepOperator):
    """Run ``spark_jobs/build_features.py`` for a plan on local Spark; return the summary URI.

    :param plan_uri: the plan from :class:`PlanFeatureRefreshOperator`.
    """

    ui_color = "#f5cba7"

    def execute(self, context: Context) -> str:
        """Run the job to completion (the local backend is synchronous), this task as its lineage parent."""
        summary_uri = self.service.run_local(str(self.plan_uri), parent_conf(context))
        self._lineage = lambda: features_lineage(self.service, str(self.plan_uri), raw=True)
        return summary_uri


class GlueBuildFeaturesOperator(GlueJobOperator, WarpSpeedSettingsMixin):
    """Run ``build_features.py`` as an AWS Glue 5 job through the Amazon provider's GlueJobOperator.

    At run time it reads the ``glue`` section of ``config_file``, uploads the script and
    ``spark_jobs.zip`` to S3, creates or updates the job (Glue 5.0, ``--datalake-formats
    iceberg``, the Iceberg catalog, Glue or REST, as ``--conf``), starts a run with the plan URI
    and waits deferred for at least the job's timeout. While Glue answers
    ConcurrentRunsExceededException the task defers between starts (exponential backoff with
    jitter, ``concurrency_retry_*``) instead of sleeping in a worker; with ``deferrable=False``
    the hook retries in the worker.

    :param plan_uri: the plan from :class:`PlanFeatureRefreshOperator`.
    :param config_file: the preprocessing YAML (``glue`` section, see :class:`GlueJobSettings`).
    """

    s3_component = "preprocess"

    aws_hook_class = ConcurrencyAwareGlueJobHook
    template_fields: Sequence[str] = (*GlueJobOperator.template_fields, "plan_uri", "config_file")
    ui_color = "#f0b27a"

    def __init__(self, *, plan_uri: str | XComArg, config_file: str, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)  # wait in the triggerer whatever [operators] default_deferrable says
        kwargs.setdefault("job_name", "warpspeed-build-features")
        kwargs.setdefault("aws_conn_id", None)  # None: [warpspeed] aws_conn_id (the settings resolve it)
        super().__init__(**kwargs)
        self.plan_uri = plan_uri
        self.config_file = config_file
        self.glue_settings: GlueJobSettings | None = None

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        params = dict(super()._hook_parameters)
        if self.glue_settings is not None:
            params |= {
                "concurrency_retry_initial_seconds": self.glue_settings.concurrency_retry_initial_seconds,
                "concurrency_retry_max_seconds": self.glue_settings.concurrency_retry_max_seconds,
                # deferrable: one start per attempt, the task defers between starts (start_again)
                "concurrency_retry_max_attempts": 1 if self.deferrable
                else self.glue_settings.concurrency_retry_max_attempts,
            }
        return params

    def configure(self, glue: GlueJobSettings, settings: WarpSpeedSettings) -> None:
        """Fill the GlueJobOperator fields from the Glue settings (before the hook is built)."""
        catalog_conf = glue.catalog_conf(settings.catalog)
        self.glue_settings = glue
        self.aws_conn_id = settings.aws_conn_id  # this task's, else [warpspeed] aws_conn_id
        self.region_name = settings.region_name
        self.job_name = glue.job_name
        self.job_desc = "Warp Speed: refresh features.account_features from changed raw partitions"
        self.script_location = str(spark_jobs_script(BUILD_SCRIPT))
        self.s3_bucket = glue.require_bucket()
        self.s3_artifacts_prefix = f"{glue.scripts_prefix.strip('/')}/"
        self.iam_role_name = glue.iam_role_name
        self.iam_role_arn = glue.iam_role_arn
        self.concurrent_run_limit = glue.max_concurrent_runs
        self.num_of_dpus = None
        self.create_job_kwargs = glue.create_job_kwargs(catalog_conf)
        self.create_job_kwargs.pop("Command", None)  # the operator uploads the script and sets it
        self.script_args = {**self.script_args, "--plan-uri": str(self.plan_uri), "--catalog": settings.catalog.name}
        self.update_config = True
        self.replace_script_file = True
        self.stop_job_run_on_kill = True
        self.waiter_delay = glue.waiter_delay
        self.waiter_max_attempts = glue.waiter_max_attempts

    def execute(self, context: Context) -> str | None:
        """Configure, upload ``spark_jobs.zip``, make sure the tables exist, then run the Glue job."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        glue = GlueJobSettings.load(self.config_file)
        self.configure(glue, self.settings)
        prep = FeatureRefreshService(self.settings)
        prep.ensure_tables()
        uri = prep.upload_artifacts(glue, S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn())
        self.log.info("Uploaded %s; running Glue job %s for plan %s", uri, self.job_name, self.plan_uri)
        return self._start(context, 1)

    def start_again(self, context: Context, event: Any = None, attempt: int = 2) -> str | None:
        """Resume after a deferred backoff: configure again (a resumed task is a new instance) and start."""
        self.configure(GlueJobSettings.load(self.config_file), self.settings)
        return self._start(context, attempt)

    def _start(self, context: Context, attempt: int) -> str | None:
        """Start the run (the parent defers on its completion); on ConcurrentRunsExceeded defer, then start again."""
        try:
            return super().execute(context)
        except ClientError as err:
            glue = self.glue_settings
            if not (self.deferrable and glue and is_concurrent_runs_exceeded(err)):
                raise
            if attempt >= glue.concurrency_retry_max_attempts:
                self.log.error("Glue job %s still at its %d concurrent runs after %d starts; giving up",
                               self.job_name, glue.max_concurrent_runs, attempt)
                raise
            delay = glue.concurrency_retry_delay(attempt)
            self.log.warning("Glue job %s already runs %d times (ConcurrentRunsExceeded); start %d of %d in %.0f s "
                             "(deferred)", self.job_name, glue.max_concurrent_runs, attempt + 1,
                             glue.concurrency_retry_max_attempts, delay)
            self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=delay)), method_name="start_again",
                       kwargs={"attempt": attempt + 1})


class PublishFeaturesOperator(PlanStepOperator):
    """Check the job's summary, move the watermark and emit the features asset event.

    The event's extra is ``{snapshot_id, changed_partitions, feature_partitions, changed_rows,
    as_of, groups, summary_uri}``; the return value (XCom) is the new snapshot id.

    :param plan_uri: the plan the job ran.
    """

    ui_color = "#d5f5e3"

    def execute(self, context: Context) -> int | None:
        """Publish and attach the extra to the features asset outlet."""
        extra = self.service.publish(str(self.plan_uri))
        self._lineage = lambda: features_lineage(self.service, str(self.plan_uri), raw=False)
        for outlet in self.outlets:
            if getattr(outlet, "name", None) == FEATURES_ASSET_NAME:
                context["outlet_events"][outlet].extra = extra
        return extra["snapshot_id"]


def features_lineage(service: FeatureRefreshService, plan_uri: str, *, raw: bool) -> Lineage:
    """Return what a refresh step read and wrote: the features table out, with the rows the job changed.

    :param raw: the build step (it read the plan and the raw sources, and wrote the summary);
        else the publish step (it read the summary and moved the watermark).
    """
    plan = service.read_plan(plan_uri)
    summary = service.read_summary(plan_uri)
    table = DatasetUse(iceberg_table(service.settings.catalog, plan["features_table"]),
                       rows=int(summary.get("changed_rows") or 0))
    prefix = service.settings.storage_prefix
    if raw:
        changed = sorted(s for s, days in plan["changed"].items() if days)
        sources = [DatasetUse(storage_dataset(raw_source(s).location(prefix))) for s in changed]
        return Lineage(inputs=[DatasetUse(storage_dataset(plan_uri)), *sources],
                       outputs=[table, DatasetUse(storage_dataset(plan["summary_uri"]))])
    return Lineage(inputs=[DatasetUse(storage_dataset(plan["summary_uri"]))],
                   outputs=[table, DatasetUse(storage_dataset(service.state_uri(plan["name"])))])
