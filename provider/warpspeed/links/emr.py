"""Extra links for tasks that run on the EMR pool: cluster page, step logs, Spark history.

The task stores what a link needs when it learns the cluster (``persist``): on itself, and in
XCom as the Amazon provider's links do. Airflow renders the links in the worker right after each
try, from the operator object, so :meth:`EmrPoolLink.get_link` reads the operator and makes no
XCom or AWS call: with the local backend nothing is stored and the links render empty, without
the "XCom not found" error the Amazon links log for a key never pushed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

LINKS_ATTRIBUTE = "_warpspeed_links"
"""Attribute of the operator holding ``{link key: link parameters}`` for this try."""


class EmrPoolLink(BaseAwsLink):
    """An AWS console link whose parameters the task stored on itself (see the module doc)."""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """Return the link from the parameters ``persist`` stored on ``operator``; empty when none were."""
        params = (getattr(operator, LINKS_ATTRIBUTE, None) or {}).get(self.key)
        return self.format_link(**params) if params else ""

    @classmethod
    def persist(
        cls, context: Any, operator: Any, region_name: str, aws_partition: str, **kwargs: Any
    ) -> None:
        """Store the link's parameters on the operator, and in XCom as :class:`BaseAwsLink` does."""
        params = {"region_name": region_name, "aws_domain": cls.get_aws_domain(aws_partition), **kwargs}
        stored = dict(getattr(operator, LINKS_ATTRIBUTE, None) or {})
        stored[cls.key] = params
        setattr(operator, LINKS_ATTRIBUTE, stored)
        super().persist(context=context, operator=operator, region_name=region_name, aws_partition=aws_partition,
                        **kwargs)


class EmrPoolClusterLink(EmrPoolLink):
    """Link to the EMR console page of the task's cluster."""

    name = "EMR Cluster"
    key = "warpspeed_emr_cluster"
    format_str = BASE_AWS_CONSOLE_LINK + "/emr/home?region={region_name}#/clusterDetails/{cluster_id}"


class EmrPoolStepLogsLink(EmrPoolLink):
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


class EmrPoolSparkHistoryLink(EmrPoolLink):
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
        """Prefer ``http://<primary-dns>:18080/`` when the task stored it."""
        if kwargs.get("primary_dns"):
            return f"http://{kwargs['primary_dns']}:18080/"
        return super().format_link(**kwargs)


def step_logs_prefix(log_uri: str | None, cluster_id: str) -> str | None:
    """Return the folder of a cluster's step logs under its log URI."""
    if not log_uri:
        return None
    return f"{log_uri.replace('s3n://', 's3://').rstrip('/')}/{cluster_id}/steps/"
