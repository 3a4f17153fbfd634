"""S3 lifecycle rules for intake/batch manifests, maintenance documents and logs.

Rules come from ``maintenance/s3_lifecycle.yaml`` with prefixes relative to the storage prefix.
Before anything is applied, :func:`check_rules` refuses every rule whose prefix overlaps a
protected prefix (the Iceberg warehouse, each table's data and metadata location): Iceberg
removes table files itself, and a lifecycle rule there would delete files that live snapshots
still reference. :class:`S3LifecycleHook` merges the rules into the bucket's configuration,
replacing only rules whose id starts with ``warpspeed-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from airflow.sdk import BaseHook

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import join_uri

MANAGED_PREFIX = "warpspeed-"
STORAGE_CLASSES = (
    "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE",
)
_RULE_KEYS = {"id", "description", "prefix", "tags", "transitions", "expiration_days",
              "abort_incomplete_multipart_upload_days"}


@dataclass(frozen=True)
class Transition:
    """Move objects to ``storage_class`` ``days`` after creation."""

    days: int
    storage_class: str

    def __post_init__(self) -> None:
        if not isinstance(self.days, int) or self.days < 0:
            raise WarpSpeedConfigError(f"transitions.days must be a non-negative integer, got {self.days!r}")
        if self.storage_class not in STORAGE_CLASSES:
            raise WarpSpeedConfigError(
                f"transitions.storage_class {self.storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}"
            )
        if self.storage_class in ("STANDARD_IA", "ONEZONE_IA") and self.days < 30:
            raise WarpSpeedConfigError(
                f"transitions.days={self.days}: S3 needs at least 30 days before {self.storage_class}"
            )


@dataclass(frozen=True)
class LifecycleRule:
    """One lifecycle rule; ``prefix`` is relative to the storage prefix unless it is an ``s3://`` URI."""

    id: str
    prefix: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    transitions: tuple[Transition, ...] = ()
    expiration_days: int | None = None
    abort_incomplete_multipart_upload_days: int | None = None

    def __post_init__(self) -> None:
        if not self.id.startswith(MANAGED_PREFIX) or len(self.id) > 255:
            raise WarpSpeedConfigError(
                f"rules.id {self.id!r} must start with {MANAGED_PREFIX!r} (<= 255 chars)"
            )
        for name in ("expiration_days", "abort_incomplete_multipart_upload_days"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise WarpSpeedConfigError(
                    f"rules.{self.id}.{name} must be a positive integer, got {value!r}"
                )
        if self.expiration_days is None and not self.transitions:
            raise WarpSpeedConfigError(f"rules.{self.id} neither expires nor transitions anything")
        for t in self.transitions:
            if self.expiration_days is not None and t.days >= self.expiration_days:
                raise WarpSpeedConfigError(
                    f"rules.{self.id}: transition after {t.days} days is not before expiration "
                    f"({self.expiration_days} days)"
                )

    def location(self, storage_prefix: str) -> tuple[str, str]:
        """Return ``(bucket, key prefix)`` the rule covers."""
        uri = self.prefix if "://" in self.prefix else join_uri(storage_prefix, self.prefix)
        if self.prefix.endswith("/") and not uri.endswith("/"):
            uri += "/"
        parsed = urlparse(uri)
        if parsed.scheme not in ("s3", "s3a"):
            raise WarpSpeedConfigError(
                f"rules.{self.id}: lifecycle rules need an s3:// location, got {uri!r}"
            )
        return parsed.netloc, parsed.path.lstrip("/")

    def to_s3(self, storage_prefix: str) -> dict[str, Any]:
        """Return the rule in ``PutBucketLifecycleConfiguration`` form."""
        _, key = self.location(storage_prefix)
        if self.tags:
            filt: dict[str, Any] = {"And": {"Prefix": key, "Tags": [
                {"Key": k, "Value": v} for k, v in sorted(self.tags.items())]}}
        else:
            filt = {"Prefix": key}
        rule: dict[str, Any] = {"ID": self.id, "Status": "Enabled", "Filter": filt}
        if self.transitions:
            rule["Transitions"] = [
                {"Days": t.days, "StorageClass": t.storage_class} for t in self.transitions
            ]
        if self.expiration_days is not None:
            rule["Expiration"] = {"Days": self.expiration_days}
        if self.abort_incomplete_multipart_upload_days is not None:
            rule["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": self.abort_incomplete_multipart_upload_days}
        return rule


def load_rules(path: str | Path) -> list[LifecycleRule]:
    """Read and validate ``s3_lifecycle.yaml``."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarpSpeedConfigError(f"lifecycle file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise WarpSpeedConfigError(f"lifecycle file {path} is not valid YAML: {err}") from err
    raw = doc.get("rules") if isinstance(doc, Mapping) else None
    if not isinstance(raw, list) or not raw:
        raise WarpSpeedConfigError(f"{path}: expected a non-empty 'rules:' list")
    rules = []
    for spec in raw:
        if not isinstance(spec, Mapping) or set(spec) - _RULE_KEYS or not {"id", "prefix"} <= set(spec):
            raise WarpSpeedConfigError(
                f"{path}: each rule needs id and prefix and only {sorted(_RULE_KEYS)}: {spec!r}"
            )
        rules.append(LifecycleRule(
            id=str(spec["id"]),
            prefix=str(spec["prefix"]),
            description=str(spec.get("description") or ""),
            tags=dict(spec.get("tags") or {}),
            transitions=tuple(Transition(int(t["days"]), str(t["storage_class"]))
                              for t in spec.get("transitions") or ()),
            expiration_days=spec.get("expiration_days"),
            abort_incomplete_multipart_upload_days=spec.get("abort_incomplete_multipart_upload_days"),
        ))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise WarpSpeedConfigError(f"{path}: rule ids must be unique, got {ids}")
    return rules


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def check_rules(rules: Sequence[LifecycleRule], storage_prefix: str, protected_uris: Iterable[str]) -> None:
    """Refuse rules whose prefix overlaps a protected (table data or metadata) prefix.

    S3 matches prefixes as plain strings, so ``ware`` covers ``warehouse/``: a rule is refused
    when its key prefix and a protected key prefix in the same bucket are prefixes of each other.
    """
    protected = [_split(u) for u in protected_uris if urlparse(u).scheme in ("s3", "s3a")]
    problems = []
    for rule in rules:
        bucket, key = rule.location(storage_prefix)
        for p_bucket, p_key in protected:
            folder = p_key.rstrip("/") + "/" if p_key else ""
            if p_bucket == bucket and (folder.startswith(key) or key.startswith(folder)):
                problems.append(f"{rule.id} (s3://{bucket}/{key}) covers table files under s3://{p_bucket}/{p_key}")
    if problems:
        raise WarpSpeedConfigError(
            "refusing lifecycle rules that overlap Iceberg table data/metadata (Iceberg deletes those "
            "files itself): " + "; ".join(problems)
        )


def merge_rules(
    existing: Sequence[Mapping[str, Any]], managed: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Keep the bucket's foreign rules; replace every ``warpspeed-`` rule with ``managed``."""
    kept = [dict(r) for r in existing if not str(r.get("ID", "")).startswith(MANAGED_PREFIX)]
    return kept + [dict(r) for r in managed]


class S3LifecycleHook(BaseHook):
    """Read and write a bucket's lifecycle configuration.

    :param aws_conn_id: Airflow AWS connection (used when no client is given).
    :param client: an S3 client to use instead (tests, or a caller that already has one).
    """

    def __init__(self, aws_conn_id: str | None = "aws_default", client: Any = None) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self._client = client

    @cached_property
    def client(self) -> Any:
        """Return the S3 client (built from the Airflow connection on first use)."""
        if self._client is not None:
            return self._client
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def get_rules(self, bucket: str) -> list[dict[str, Any]]:
        """Return the bucket's lifecycle rules (empty when it has none)."""
        from botocore.exceptions import ClientError

        try:
            return list(self.client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise

    def apply(
        self, rules: Sequence[LifecycleRule], storage_prefix: str, protected_uris: Iterable[str]
    ) -> dict[str, list[str]]:
        """Check the rules, then merge them into each bucket's configuration; return ``{bucket: ids}``."""
        check_rules(rules, storage_prefix, protected_uris)
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for rule in rules:
            bucket, _ = rule.location(storage_prefix)
            by_bucket.setdefault(bucket, []).append(rule.to_s3(storage_prefix))
        applied = {}
        for bucket, managed in sorted(by_bucket.items()):
            merged = merge_rules(self.get_rules(bucket), managed)
            self.client.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": merged}
            )
            applied[bucket] = [r["ID"] for r in managed]
            self.log.info("s3://%s: %d warpspeed rules applied (%s), %d other rules kept", bucket,
                          len(managed), ", ".join(applied[bucket]), len(merged) - len(managed))
        return applied
