"""Iceberg maintenance policy: which tables are maintained and when each action is due.

Loaded from ``dags/config/maintenance.yaml``: a ``defaults:`` block and a ``tables:`` registry
whose entries override any default key. Every threshold is a dataclass field validated in
``__post_init__`` so a bad YAML value fails with the name of the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from warpspeed.config.fields import integer, number
from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError

MB = 1024 * 1024
ORPHAN_FLOOR_HOURS = 72.0
"""``remove_orphan_files`` never deletes files younger than three days (AWS Glue uses the same floor)."""


@dataclass(frozen=True)
class SnapshotPolicy:
    """How long snapshots are kept (``expire_snapshots``).

    :param max_age_hours: snapshots older than this are expired (time-travel horizon).
    :param retain_last: the newest N snapshots are kept whatever their age.
    :param min_expirable: expiry is due once at least this many snapshots can go.
    """

    max_age_hours: float = 24.0
    retain_last: int = 10
    min_expirable: int = 1

    def __post_init__(self) -> None:
        number("snapshots.max_age_hours", self.max_age_hours)
        integer("snapshots.retain_last", self.retain_last)
        integer("snapshots.min_expirable", self.min_expirable)


@dataclass(frozen=True)
class CompactionPolicy:
    """When a partition's small files are rewritten (``rewrite_data_files``, bin-pack).

    A file is *small* below ``small_file_ratio * target_file_size_mb``. A partition is due when
    it holds at least 2 small files and either ``min_small_files`` of them or
    ``min_small_bytes_mb`` of undersized data.

    :param target_file_size_mb: file size the rewrite aims for.
    :param small_file_ratio: fraction of the target below which a file is small.
    :param min_small_files: small-file count that triggers compaction of a partition.
    :param min_small_bytes_mb: undersized bytes that trigger compaction of a partition.
    :param max_partitions_per_run: cap on partitions rewritten per run (worst first).
    :param partial_progress_max_commits: commits a rewrite may split into (partial progress).
    """

    target_file_size_mb: int = 128
    small_file_ratio: float = 0.75
    min_small_files: int = 12
    min_small_bytes_mb: int = 128
    max_partitions_per_run: int = 500
    partial_progress_max_commits: int = 10

    def __post_init__(self) -> None:
        integer("compaction.target_file_size_mb", self.target_file_size_mb)
        if number("compaction.small_file_ratio", self.small_file_ratio, positive=True) >= 1:
            raise WarpSpeedConfigError(
                f"compaction.small_file_ratio must be below 1, got {self.small_file_ratio!r}"
            )
        integer("compaction.min_small_files", self.min_small_files, least=2, why="one file is whole")
        integer("compaction.min_small_bytes_mb", self.min_small_bytes_mb)
        integer("compaction.max_partitions_per_run", self.max_partitions_per_run)
        integer("compaction.partial_progress_max_commits", self.partial_progress_max_commits)

    @property
    def target_file_size_bytes(self) -> int:
        """Return the target file size in bytes."""
        return self.target_file_size_mb * MB

    @property
    def small_file_bytes(self) -> int:
        """Return the size below which a data file counts as small."""
        return int(self.target_file_size_bytes * self.small_file_ratio)


@dataclass(frozen=True)
class ManifestPolicy:
    """When manifests are rewritten (``rewrite_manifests``).

    :param max_manifests: manifests in the current snapshot that trigger a rewrite.
    """

    max_manifests: int = 40

    def __post_init__(self) -> None:
        integer("manifests.max_manifests", self.max_manifests)


@dataclass(frozen=True)
class OrphanPolicy:
    """How often unreferenced files are deleted (``remove_orphan_files``).

    :param cadence_days: days between orphan cleanups of a table.
    :param older_than_hours: only files older than this are deleted; at least 72 hours and
        at least ``longest_write_hours`` (a running write's files are not referenced yet).
    :param longest_write_hours: the longest a write to this table can take.
    """

    cadence_days: float = 7.0
    older_than_hours: float = 72.0
    longest_write_hours: float = 6.0

    def __post_init__(self) -> None:
        number("orphans.cadence_days", self.cadence_days, positive=True)
        number("orphans.older_than_hours", self.older_than_hours, positive=True)
        number("orphans.longest_write_hours", self.longest_write_hours, positive=True)
        if self.older_than_hours < ORPHAN_FLOOR_HOURS:
            raise WarpSpeedConfigError(
                f"orphans.older_than_hours={self.older_than_hours} is below the 72-hour floor: files of "
                "in-flight or recently failed writes would be deleted"
            )
        if self.older_than_hours < self.longest_write_hours:
            raise WarpSpeedConfigError(
                f"orphans.older_than_hours={self.older_than_hours} is below "
                f"orphans.longest_write_hours={self.longest_write_hours}: a running write's files would go"
            )


@dataclass(frozen=True)
class TriggerPolicy:
    """When an asset-triggered (not daily) run maintains the table.

    :param asset_driven: whether asset-triggered runs consider this table at all.
    :param min_new_commits: snapshots committed since the last maintenance run.
    :param min_interval_minutes: least time between two maintenance runs of the table.
    """

    asset_driven: bool = False
    min_new_commits: int = 48
    min_interval_minutes: int = 360

    def __post_init__(self) -> None:
        if not isinstance(self.asset_driven, bool):
            raise WarpSpeedConfigError(
                f"trigger.asset_driven must be true or false, got {self.asset_driven!r}"
            )
        integer("trigger.min_new_commits", self.min_new_commits)
        integer("trigger.min_interval_minutes", self.min_interval_minutes, least=0)


_SECTIONS: dict[str, type] = {
    "snapshots": SnapshotPolicy,
    "compaction": CompactionPolicy,
    "manifests": ManifestPolicy,
    "orphans": OrphanPolicy,
    "trigger": TriggerPolicy,
}


@dataclass(frozen=True)
class TablePolicy:
    """The full maintenance policy of one registered table."""

    identifier: str
    snapshots: SnapshotPolicy = field(default_factory=SnapshotPolicy)
    compaction: CompactionPolicy = field(default_factory=CompactionPolicy)
    manifests: ManifestPolicy = field(default_factory=ManifestPolicy)
    orphans: OrphanPolicy = field(default_factory=OrphanPolicy)
    trigger: TriggerPolicy = field(default_factory=TriggerPolicy)

    def __post_init__(self) -> None:
        parts = self.identifier.split(".")
        if len(parts) != 2 or not all(p.replace("_", "a").isalnum() for p in parts):
            raise WarpSpeedConfigError(
                f"tables: {self.identifier!r} must be a 'namespace.table' identifier"
            )

    @property
    def orphan_older_than_hours(self) -> float:
        """Return the effective orphan age: never below 72 hours nor the longest write."""
        return max(ORPHAN_FLOOR_HOURS, self.orphans.older_than_hours, self.orphans.longest_write_hours)


def _section(name: str, base: Any, override: Any, source: str) -> Any:
    if override is None:
        return base
    if not isinstance(override, Mapping):
        raise WarpSpeedConfigError(f"{source}: {name} must be a mapping, got {override!r}")
    known = {f.name for f in fields(base)}
    unknown = set(override) - known
    if unknown:
        raise WarpSpeedConfigError(
            f"{source}: {name} has unknown keys {sorted(unknown)}; known: {sorted(known)}"
        )
    return replace(base, **dict(override))


@dataclass(frozen=True)
class MaintenancePolicy:
    """Every registered table's policy, in registry order."""

    tables: tuple[TablePolicy, ...]

    def __post_init__(self) -> None:
        if not self.tables:
            raise WarpSpeedConfigError("tables: the maintenance registry lists no tables")
        ids = [t.identifier for t in self.tables]
        if len(set(ids)) != len(ids):
            raise WarpSpeedConfigError(f"tables: an identifier is listed twice in {ids}")

    def __getitem__(self, identifier: str) -> TablePolicy:
        for table in self.tables:
            if table.identifier == identifier:
                return table
        raise WarpSpeedConfigError(
            f"table {identifier!r} is not in the maintenance registry: {[t.identifier for t in self.tables]}"
        )

    @classmethod
    def from_dict(cls, doc: Any, source: str = "maintenance config") -> MaintenancePolicy:
        """Build the policy from the parsed YAML: ``defaults`` merged under each ``tables`` entry."""
        if not isinstance(doc, Mapping):
            raise WarpSpeedConfigError(f"{source}: expected a mapping with 'defaults' and 'tables'")
        unknown = set(doc) - {"defaults", "tables"}
        if unknown:
            raise WarpSpeedConfigError(f"{source}: unknown top-level keys {sorted(unknown)}")
        defaults_doc = doc.get("defaults") or {}
        if not isinstance(defaults_doc, Mapping) or set(defaults_doc) - set(_SECTIONS):
            raise WarpSpeedConfigError(f"{source}: defaults may only hold {sorted(_SECTIONS)}")
        defaults = {name: _section(f"defaults.{name}", kind(), defaults_doc.get(name), source)
                    for name, kind in _SECTIONS.items()}
        raw_tables = doc.get("tables")
        if not isinstance(raw_tables, Mapping) or not raw_tables:
            raise WarpSpeedConfigError(f"{source}: expected a non-empty 'tables:' mapping")
        tables = []
        for identifier, raw_spec in raw_tables.items():
            spec = raw_spec or {}
            if not isinstance(spec, Mapping) or set(spec) - set(_SECTIONS):
                raise WarpSpeedConfigError(
                    f"{source}: tables.{identifier} may only hold {sorted(_SECTIONS)}, got {spec!r}"
                )
            sections = {name: _section(f"tables.{identifier}.{name}", defaults[name], spec.get(name), source)
                        for name in _SECTIONS}
            tables.append(TablePolicy(identifier=str(identifier), **sections))
        return cls(tuple(tables))

    @classmethod
    def load(cls, path: str | Path) -> MaintenancePolicy:
        """Read and validate a maintenance policy YAML file."""
        return cls.from_dict(read_mapping(path, "maintenance policy"), source=str(path))
