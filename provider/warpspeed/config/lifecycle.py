"""S3 lifecycle rules for window manifests, maintenance documents and logs (pure: no S3 client).

Rules come from ``dags/config/s3_lifecycle.yaml`` with prefixes relative to the storage prefix.
Before anything is applied, :func:`check_rules` refuses every rule whose prefix overlaps a
protected prefix (the Iceberg warehouse, each table's data and metadata location): Iceberg
removes table files itself, and a lifecycle rule there would delete files that live snapshots
still reference. :func:`rules_by_bucket` checks and groups the rules per bucket in S3's form;
:func:`merge_rules` keeps a bucket's other rules and replaces only those whose id starts with
``warpspeed-``. :class:`~warpspeed.hooks.s3.S3LifecycleHook` reads and writes the buckets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from warpspeed.config.yaml_file import read_mapping
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
    """Read and validate the lifecycle rules file (``dags/config/s3_lifecycle.yaml``)."""
    path = Path(path)
    doc = read_mapping(path, "lifecycle rules")
    raw = doc.get("rules")
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


def rules_by_bucket(
    rules: Sequence[LifecycleRule], storage_prefix: str, protected_uris: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """Check the rules (:func:`check_rules`), then return bucket -> its rules in S3's form, in file order."""
    check_rules(rules, storage_prefix, protected_uris)
    by_bucket: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        bucket, _ = rule.location(storage_prefix)
        by_bucket.setdefault(bucket, []).append(rule.to_s3(storage_prefix))
    return by_bucket
