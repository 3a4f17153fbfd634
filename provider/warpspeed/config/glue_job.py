"""The production Glue job that refreshes the features: its settings, from ``config/preprocessing.yaml``."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.config.catalog import CatalogConfig, is_secret
from warpspeed.config.fields import integer, number
from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError

BUILD_SCRIPT = "build_features.py"
START_MARGIN_MINUTES = 15
"""How long a run may wait to start (workers allocated, a queued run) on top of the job's timeout."""
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class GlueJobSettings:
    """The production Glue job that runs ``build_features.py`` (from ``config/preprocessing.yaml``).

    :param job_name: one Glue job shared by every preprocessing DAG; with ``max_concurrent_runs``
        1 the refreshes of one table never overlap (a second start waits and retries).
    :param script_bucket: S3 bucket for the uploaded script and ``spark_jobs.zip``.
    :param concurrency_retry_max_attempts: starts tried while Glue says ConcurrentRunsExceeded;
        between two starts the task defers (no worker slot held).
    :param timeout_minutes: the job run's timeout; the task waits (deferred) at least this long
        plus :data:`START_MARGIN_MINUTES`, polling every ``waiter_delay`` seconds.
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
        try:
            version = float(self.glue_version)
        except (TypeError, ValueError):
            version = 0.0
        if version < 5.0:
            raise WarpSpeedConfigError(
                f"glue.glue_version {self.glue_version!r}: the job needs Glue 5.0 or later (write it quoted, \"5.0\")"
            )
        integer("glue.number_of_workers", self.number_of_workers, least=2, why="a driver and an executor")
        for name in ("timeout_minutes", "max_concurrent_runs", "concurrency_retry_max_attempts", "waiter_delay"):
            integer(f"glue.{name}", getattr(self, name))
        for name in ("concurrency_retry_initial_seconds", "concurrency_retry_max_seconds"):
            number(f"glue.{name}", getattr(self, name), positive=True)

    @classmethod
    def load(cls, path: str | Path) -> GlueJobSettings:
        """Read the ``glue`` section of the preprocessing YAML."""
        section = read_mapping(path, "preprocessing").get("glue") or {}
        if not isinstance(section, Mapping):
            raise WarpSpeedConfigError(f"{path}: glue must be a mapping of job settings, got {section!r}")
        unknown = sorted(set(section) - set(cls.__dataclass_fields__))
        if unknown:
            raise WarpSpeedConfigError(f"{path}: unknown glue keys {', '.join(unknown)}")
        return cls(**section)

    @property
    def waiter_max_attempts(self) -> int:
        """Return the polls that cover the job's timeout plus a start margin (``waiter_delay`` apart)."""
        return math.ceil((self.timeout_minutes + START_MARGIN_MINUTES) * 60 / self.waiter_delay)

    def concurrency_retry_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the wait before start number ``attempt + 1`` after ``attempt`` refused starts (1-based).

        Exponential from ``concurrency_retry_initial_seconds``, capped at
        ``concurrency_retry_max_seconds``, plus up to half the initial wait of jitter.
        """
        initial = self.concurrency_retry_initial_seconds
        base = min(self.concurrency_retry_max_seconds, initial * 2 ** max(0, attempt - 1))
        return base + (rng or random).uniform(0, initial / 2)

    @staticmethod
    def catalog_conf(catalog: CatalogConfig) -> dict[str, str]:
        """Return the Spark conf that registers ``catalog`` in the Glue job, or say why Glue cannot reach it.

        A ``glue`` catalog and any Iceberg REST catalog (S3 Tables, Glue's Iceberg REST endpoint,
        Polaris…) go through ``--conf`` as in any Spark; SigV4 properties (``rest.sigv4-enabled``,
        ``rest.signing-name``, ``rest.signing-region`` from ``region``) with them. A ``sql``
        catalog, a catalog on loopback, and a secret in a property (Glue shows job arguments in
        its console and API) are refused with the fix.
        """
        if catalog.kind == "sql":
            raise WarpSpeedConfigError(
                "[warpspeed] catalog_type = sql: a Glue job cannot reach a JDBC/SQLite catalog; set catalog_type "
                "= glue, or rest with the catalog's URL, or run preprocessing locally (preprocessing_backend = local)"
            )
        conf = catalog.spark_conf()
        if catalog.kind == "rest":
            host = (conf.get(f"spark.sql.catalog.{catalog.name}.uri") or "").split("://")[-1].split("/")[0]
            if host.rsplit(":", 1)[0].strip("[]") in _LOOPBACK:
                raise WarpSpeedConfigError(
                    f"the rest catalog is on loopback ({host}): a Glue job cannot reach it; set [warpspeed] "
                    "catalog_uri (or the catalog_conn_id connection) to the catalog's public URL"
                )
        secrets = sorted(k for k in catalog.catalog_properties() if is_secret(k))
        if secrets:
            raise WarpSpeedConfigError(
                f"catalog properties {', '.join(secrets)} would be written into the Glue job's arguments, which "
                "the Glue console and GetJob show: use SigV4 (rest.sigv4-enabled = true, rest.signing-name = "
                "s3tables or glue, and the Glue job role's permissions) or run preprocessing on local Spark"
            )
        return conf

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
