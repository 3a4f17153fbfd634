"""Hook for a bucket's S3 lifecycle configuration: read it, write it, merge Warp Speed's rules in.

The rules themselves (their model, the file ``dags/config/s3_lifecycle.yaml``, the check against
Iceberg table prefixes and the merge with a bucket's other rules) are pure and live in
:mod:`warpspeed.config.lifecycle`; this hook only makes the S3 calls.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from warpspeed.config import lifecycle
from warpspeed.config.lifecycle import merge_rules, rules_by_bucket

if TYPE_CHECKING:
    from warpspeed.config.lifecycle import LifecycleRule

_MOVED_TO_CONFIG = frozenset({"MANAGED_PREFIX", "STORAGE_CLASSES", "Transition", "LifecycleRule", "load_rules",
                              "check_rules"})
"""Names this module held before 0.2.0 that now live in :mod:`warpspeed.config.lifecycle`."""


def __getattr__(name: str) -> Any:
    """Forward the rule names that moved to :mod:`warpspeed.config.lifecycle`, with a warning."""
    if name in _MOVED_TO_CONFIG:
        warnings.warn(f"{__name__}.{name} moved to warpspeed.config.lifecycle; import it from there",
                      DeprecationWarning, stacklevel=2)
        return getattr(lifecycle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class S3LifecycleHook(BaseHook):
    """Read and write a bucket's lifecycle configuration.

    :param aws_conn_id: Airflow AWS connection (used when no client is given).
    :param region_name: AWS region (None: the connection's).
    :param client: an S3 client to use instead (tests, or a caller that already has one).
    """

    def __init__(self, aws_conn_id: str | None = "aws_default", client: Any = None,
                 region_name: str | None = None) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self._client = client

    @cached_property
    def client(self) -> Any:
        """Return the S3 client (built from the Airflow connection on first use)."""
        if self._client is not None:
            return self._client
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()

    def get_rules(self, bucket: str) -> list[dict[str, Any]]:
        """Return the bucket's lifecycle rules (empty when it has none)."""
        from botocore.exceptions import ClientError

        try:
            return list(self.client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise

    def put_rules(self, bucket: str, rules: Sequence[dict[str, Any]]) -> None:
        """Replace the bucket's whole lifecycle configuration with ``rules``."""
        self.client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})

    def apply(
        self, rules: Sequence[LifecycleRule], storage_prefix: str, protected_uris: Iterable[str]
    ) -> dict[str, list[str]]:
        """Check the rules, then merge them into each bucket's configuration; return ``{bucket: ids}``.

        Nothing is written unless every rule passes :func:`~warpspeed.config.lifecycle.check_rules`.
        """
        applied = {}
        for bucket, managed in sorted(rules_by_bucket(rules, storage_prefix, protected_uris).items()):
            merged = merge_rules(self.get_rules(bucket), managed)
            self.put_rules(bucket, merged)
            applied[bucket] = [r["ID"] for r in managed]
            self.log.info("s3://%s: %d warpspeed rules applied (%s), %d other rules kept", bucket,
                          len(managed), ", ".join(applied[bucket]), len(merged) - len(managed))
        return applied
