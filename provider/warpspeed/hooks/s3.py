"""Hook for a bucket's S3 lifecycle configuration: read it, write it, merge Warp Speed's rules in.

The rules themselves (their model, the file ``dags/config/s3_lifecycle.yaml``, the check against
Iceberg table prefixes and the merge with a bucket's other rules) are pure and live in
:mod:`warpspeed.config.lifecycle`; this hook only makes the S3 calls: it reads and writes a
bucket's configuration (keeping its ``TransitionDefaultMinimumObjectSize``) and looks, in the
buckets the rules touch, for Iceberg tables under or around each rule's prefix, whoever owns them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
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

    def get_configuration(self, bucket: str) -> tuple[list[dict[str, Any]], str | None]:
        """Return the bucket's lifecycle rules (empty when none) and its ``TransitionDefaultMinimumObjectSize``."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_bucket_lifecycle_configuration(Bucket=bucket)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return [], None
            raise
        return list(answer.get("Rules", [])), answer.get("TransitionDefaultMinimumObjectSize")

    def get_rules(self, bucket: str) -> list[dict[str, Any]]:
        """Return the bucket's lifecycle rules (empty when it has none)."""
        return self.get_configuration(bucket)[0]

    def put_rules(self, bucket: str, rules: Sequence[dict[str, Any]], minimum_object_size: str | None = None) -> None:
        """Replace the bucket's whole lifecycle configuration with ``rules``.

        :param minimum_object_size: the bucket's ``TransitionDefaultMinimumObjectSize`` to keep
            (S3 resets it to its default when a put leaves it out).
        """
        extra = {"TransitionDefaultMinimumObjectSize": minimum_object_size} if minimum_object_size else {}
        self.client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)}, **extra)

    def _keys(self, bucket: str, prefix: str, max_keys: int = 1000) -> Iterator[str]:
        token: dict[str, Any] = {}
        while True:
            page = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=max_keys, **token)
            yield from (o["Key"] for o in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def iceberg_tables_near(self, bucket: str, prefix: str) -> list[str]:
        """Return the roots of Iceberg tables under ``prefix``, or holding it, in ``bucket``.

        A table is recognised by a ``metadata/*.metadata.json`` key, whoever owns it, without
        reading any catalog: one listing of the prefix (a page per 1,000 objects) plus one small
        listing of ``<ancestor>/metadata/`` per folder above it.
        """
        roots = set()
        for key in self._keys(bucket, prefix):
            head, _, name = key.rpartition("/metadata/")
            if name.endswith(".metadata.json") and "/" not in name:
                roots.add(f"s3://{bucket}/{head}")
        parts = prefix.strip("/").split("/")
        for depth in range(len(parts)):
            folder = "/".join(parts[:depth])
            metadata = f"{folder}/metadata/" if folder else "metadata/"
            if any(k.endswith(".metadata.json") for k in self._keys(bucket, metadata, max_keys=50)):
                roots.add(f"s3://{bucket}/{folder}")
        return sorted(roots)

    def apply(
        self, rules: Sequence[LifecycleRule], storage_prefix: str, protected_uris: Iterable[str]
    ) -> dict[str, list[str]]:
        """Check the rules, then merge them into each bucket's configuration; return ``{bucket: ids}``.

        Besides ``protected_uris``, every Iceberg table found under or around a rule's prefix
        (:meth:`iceberg_tables_near`) is protected. Nothing is written unless every rule passes
        :func:`~warpspeed.config.lifecycle.check_rules`.
        """
        found = [uri for rule in rules for uri in self.iceberg_tables_near(*rule.location(storage_prefix))]
        if found:
            self.log.warning("Iceberg tables in the lifecycle rules' buckets, protected: %s", ", ".join(found))
        applied = {}
        for bucket, managed in sorted(rules_by_bucket(rules, storage_prefix, [*protected_uris, *found]).items()):
            existing, minimum_object_size = self.get_configuration(bucket)
            merged = merge_rules(existing, managed)
            self.put_rules(bucket, merged, minimum_object_size)
            applied[bucket] = [r["ID"] for r in managed]
            self.log.info("s3://%s: %d warpspeed rules applied (%s), %d other rules kept", bucket,
                          len(managed), ", ".join(applied[bucket]), len(merged) - len(managed))
        return applied
