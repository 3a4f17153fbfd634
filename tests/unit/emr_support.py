"""The EMR pool on moto's in-process EMR and S3: its region and bucket, a backend, steps played to an end.

moto keeps steps PENDING/RUNNING forever; :func:`finish_steps` plays the cluster and moves
them to a final state, and failure details (which moto does not model) are added to
ListSteps responses with a botocore ``after-call`` hook (:func:`failure_details`). The
``aws_env`` fixture (``tests/unit/conftest.py``) starts moto with :data:`BUCKET` in it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID

from tests.paths import REPO_ROOT
from warpspeed.compute.base import SparkJob
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.config.cluster_profiles import ACTIVE_CLUSTER_STATES
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.hooks.aws_retry import retry_config
from warpspeed.hooks.emr import EmrPoolHook

REGION = "us-east-1"
BUCKET = "bkt-warpspeed"
PROFILES = REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml"


def emr_settings(tmp_path: Path) -> WarpSpeedSettings:
    return WarpSpeedSettings.from_mapping(
        {
            "home": str(tmp_path),
            "storage_prefix": f"s3://{BUCKET}/warpspeed",
            "catalog_type": "glue",
            "warehouse": f"s3://{BUCKET}/warehouse",
            "region": REGION,
            "compute_backend": "emr",
        }
    )


def make_backend(tmp_path: Path, **hook_kwargs: Any) -> EmrComputeBackend:
    client = boto3.client("emr", region_name=REGION, config=hook_kwargs.pop("config", retry_config()))
    hook = EmrPoolHook(client=client, sleep=lambda _s: None, **hook_kwargs)
    s3 = boto3.client("s3", region_name=REGION)
    return EmrComputeBackend(emr_settings(tmp_path), profiles_file=PROFILES, hook=hook, s3_client=s3)


class Calls:
    """Count EMR API calls: logical (before-call) and HTTP attempts (before-send)."""

    def __init__(self, client: Any) -> None:
        self.logical: Counter[str] = Counter()
        self.attempts = 0
        client.meta.events.register("before-call.emr", self._call)
        client.meta.events.register_first("before-send.emr", self._send)

    def _call(self, model: Any, **_: Any) -> None:
        self.logical[model.name] += 1

    def _send(self, **_: Any) -> None:
        self.attempts += 1

    @property
    def total(self) -> int:
        return sum(self.logical.values())


def moto_cluster(cluster_id: str) -> Any:
    from moto.emr.models import emr_backends

    return emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id]


def active_clusters() -> list[dict[str, Any]]:
    return boto3.client("emr", region_name=REGION).list_clusters(ClusterStates=list(ACTIVE_CLUSTER_STATES))[
        "Clusters"
    ]



def finish_steps(cluster_id: str, states: dict[str, str] | None = None, default: str = "COMPLETED") -> None:
    for step in moto_cluster(cluster_id).steps:
        if step.state in ("PENDING", "RUNNING"):
            step.state = (states or {}).get(step.id, default)


def jobs(n: int, prefix: str = "b") -> list[SparkJob]:
    return [
        SparkJob(
            name=f"warpspeed-{prefix}{i:04d}",
            script="score_batch.py",
            args=("--batch-manifest", f"s3://{BUCKET}/m/{i}.json", "--catalog", "warpspeed"),
        )
        for i in range(n)
    ]


def failure_details(client: Any, details: dict[str, dict[str, str]]) -> None:
    def add(parsed: dict[str, Any], **_: Any) -> None:
        for step in parsed.get("Steps", []):
            if step["Id"] in details and step["Status"]["State"] == "FAILED":
                step["Status"]["FailureDetails"] = details[step["Id"]]

    client.meta.events.register("after-call.emr.ListSteps", add)
