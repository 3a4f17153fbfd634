"""Extra links for tasks that run on the EMR pool: cluster page, step logs, Spark history.

Each link reads what the task stored in XCom (``persist``) when it learnt the cluster, so
rendering a link makes no AWS call. With the local backend nothing is stored and the links
render empty.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class EmrPoolClusterLink(BaseAwsLink):
    """Link to the EMR console page of the task's cluster."""

    name = "EMR Cluster"
    key = "warpspeed_emr_cluster"
    format_str = BASE_AWS_CONSOLE_LINK + "/emr/home?region={region_name}#/clusterDetails/{cluster_id}"


class EmrPoolStepLogsLink(BaseAwsLink):
    """Link to the S3 console folder holding the cluster's step logs (stdout, stderr)."""

    name = "EMR Step Logs"
    key = "warpspeed_emr_step_logs"
    format_str = BASE_AWS_CONSOLE_LINK + "/s3/buckets/{bucket}?region={region_name}&prefix={prefix}"

    def format_link(self, **kwargs: Any) -> str:
        """Split the stored ``log_prefix`` (``s3://bucket/key/``) into bucket and prefix."""
        log_prefix = kwargs.get("log_prefix")
        if not log_prefix:
            return ""
        parsed = urlparse(log_prefix)
        return super().format_link(
            **kwargs, bucket=parsed.netloc, prefix=quote(parsed.path.lstrip("/"), safe="")
        )


class EmrPoolSparkHistoryLink(BaseAwsLink):
    """Link to the Spark history server of the task's cluster.

    On the primary node (port 18080) when its DNS is known, else the console's persistent
    application UI tab of the cluster.
    """

    name = "Spark History Server"
    key = "warpspeed_emr_spark_history"
    format_str = (
        BASE_AWS_CONSOLE_LINK + "/emr/home?region={region_name}#/clusterDetails/{cluster_id}?tab=applications"
    )

    def format_link(self, **kwargs: Any) -> str:
        """Prefer ``http://<primary-dns>:18080`` when the task stored it."""
        if kwargs.get("primary_dns"):
            return f"http://{kwargs['primary_dns']}:18080/"
        return super().format_link(**kwargs)


def step_logs_prefix(log_uri: str | None, cluster_id: str) -> str | None:
    """Return the folder of a cluster's step logs under its log URI."""
    if not log_uri:
        return None
    return f"{log_uri.replace('s3n://', 's3://').rstrip('/')}/{cluster_id}/steps/"
