"""Decide which Iceberg maintenance actions are due for a table, and why.

:func:`read_table_state` reads a table's metadata with pyiceberg (``inspect`` snapshots, data
files, manifests, refs); :func:`plan_table` is pure: it compares that state with the table's
:class:`~warpspeed.config.maintenance_policy.TablePolicy` and returns a :class:`TablePlan` whose
actions carry the numbers that triggered them. The plan serialises to the JSON document the
Spark executor (``maintenance/iceberg_maintenance.py``) reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from warpspeed.config.maintenance_policy import MB, TablePolicy

if TYPE_CHECKING:
    from pyiceberg.table import Table

PLAN_SCHEMA = "warpspeed.maintenance_plan/v1"
ActionName = Literal["rewrite_data_files", "expire_snapshots", "rewrite_manifests", "remove_orphan_files"]
ACTION_ORDER: tuple[ActionName, ...] = (
    "rewrite_data_files", "expire_snapshots", "rewrite_manifests", "remove_orphan_files",
)
"""Compaction first (its replaced files then expire with the old snapshots), orphans last."""
TriggerKind = Literal["scheduled", "asset", "manual"]


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of the table."""

    snapshot_id: int
    committed_at: datetime
    operation: str | None = None


@dataclass(frozen=True)
class PartitionFiles:
    """Data file sizes of one partition in the current snapshot.

    :param partition: ``(column, value)`` pairs of the partition, in spec order.
    :param identity: whether every partition field is an identity transform of a column (so
        the partition can be addressed with a ``column = value`` filter).
    """

    partition: tuple[tuple[str, Any], ...]
    file_sizes: tuple[int, ...]
    identity: bool = True

    @property
    def files(self) -> int:
        """Return the number of data files."""
        return len(self.file_sizes)

    @property
    def bytes(self) -> int:
        """Return the partition's data bytes."""
        return sum(self.file_sizes)


@dataclass(frozen=True)
class TableState:
    """What the planner needs to know of a table, read from its metadata."""

    identifier: str
    current_snapshot_id: int | None
    snapshots: tuple[SnapshotInfo, ...]
    ref_snapshot_ids: frozenset[int]
    partitions: tuple[PartitionFiles, ...]
    manifests: int

    @property
    def data_files(self) -> int:
        """Return the data files of the current snapshot."""
        return sum(p.files for p in self.partitions)

    @property
    def data_bytes(self) -> int:
        """Return the data bytes of the current snapshot."""
        return sum(p.bytes for p in self.partitions)


@dataclass(frozen=True)
class MaintenanceHistory:
    """When the table was last maintained (from ``warpspeed.maintenance_runs``)."""

    last_run_at: datetime | None = None
    last_orphans_at: datetime | None = None


@dataclass(frozen=True)
class ActionPlan:
    """One maintenance action, due or not, with the numbers that decided it.

    :param params: what the executor passes to the procedure (``where``, ``older_than``...).
    """

    action: ActionName
    due: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TablePlan:
    """The plan for one table: every action in execution order."""

    identifier: str
    planned_at: datetime
    trigger: TriggerKind
    actions: tuple[ActionPlan, ...]
    skipped_reason: str | None = None

    @property
    def due(self) -> tuple[ActionPlan, ...]:
        """Return the actions to run, in order."""
        return tuple(a for a in self.actions if a.due)

    def to_json(self) -> str:
        """Serialise the plan for the executor."""
        doc = {
            "schema": PLAN_SCHEMA,
            "table": self.identifier,
            "planned_at": self.planned_at.isoformat(),
            "trigger": self.trigger,
            "skipped_reason": self.skipped_reason,
            "actions": [asdict(a) for a in self.actions],
        }
        return json.dumps(doc, indent=1, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> TablePlan:
        """Read a plan written by :meth:`to_json`."""
        doc = json.loads(text)
        if doc.get("schema") != PLAN_SCHEMA:
            raise ValueError(f"not a {PLAN_SCHEMA} document")
        return cls(
            identifier=doc["table"],
            planned_at=datetime.fromisoformat(doc["planned_at"]),
            trigger=doc["trigger"],
            actions=tuple(ActionPlan(**a) for a in doc["actions"]),
            skipped_reason=doc.get("skipped_reason"),
        )

    def describe(self) -> str:
        """Return one line per action: due or not, and why."""
        lines = [f"{self.identifier} ({self.trigger}):"]
        if self.skipped_reason:
            lines.append(f"  skipped: {self.skipped_reason}")
        for a in self.actions:
            lines.append(f"  {'DUE ' if a.due else 'skip'} {a.action}: {a.reason}")
        return "\n".join(lines)


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def partition_filter(partition: Sequence[tuple[str, Any]]) -> str:
    """Return a Spark SQL predicate that selects exactly one identity partition."""
    terms = [
        f"{column} IS NULL" if value is None else f"{column} = {_sql_literal(value)}"
        for column, value in partition
    ]
    return "(" + " AND ".join(terms) + ")" if terms else "true"


def _fmt_mb(n: int) -> str:
    return f"{n / MB:.1f} MiB"


def plan_compaction(policy: TablePolicy, state: TableState, partial_progress: bool = True) -> ActionPlan:
    """Pick the partitions whose small files pass the trigger; filter the rewrite to them.

    :param partial_progress: let the rewrite commit file groups as they finish. Off for the
        embedded SQLite catalog, where Iceberg's concurrent partial commits lock the database.
    """
    c = policy.compaction
    small_limit = c.small_file_bytes
    candidates = []
    for part in state.partitions:
        small = [s for s in part.file_sizes if s < small_limit]
        small_bytes = sum(small)
        if len(small) >= 2 and (len(small) >= c.min_small_files or small_bytes >= c.min_small_bytes_mb * MB):
            candidates.append((len(small), small_bytes, part))
    candidates.sort(key=lambda t: (-t[0], -t[1], str(t[2].partition)))
    chosen = candidates[: c.max_partitions_per_run]
    small_files = sum(n for n, _, _ in chosen)
    metrics: dict[str, Any] = {
        "partitions": len(state.partitions),
        "partitions_due": len(candidates),
        "partitions_chosen": len(chosen),
        "small_files": small_files,
        "small_bytes": sum(b for _, b, _ in chosen),
        "small_file_limit_bytes": small_limit,
        "worst_partition": dict(chosen[0][2].partition) if chosen else None,
        "worst_partition_small_files": chosen[0][0] if chosen else 0,
    }
    if not chosen:
        return ActionPlan(
            "rewrite_data_files", False,
            f"no partition has >= {c.min_small_files} small files (< {_fmt_mb(small_limit)}) or "
            f">= {c.min_small_bytes_mb} MiB of them", metrics,
        )
    # Every partition due (or one is not addressable by column = value): no filter needed.
    addressable = all(p.identity and p.partition for _, _, p in chosen)
    whole_table = not addressable or len(chosen) == len(state.partitions)
    where = None if whole_table else " OR ".join(partition_filter(p.partition) for _, _, p in chosen)
    options = {
        "target-file-size-bytes": str(c.target_file_size_bytes),
        "min-file-size-bytes": str(small_limit),
        "min-input-files": "2",
        "partial-progress.enabled": "true" if partial_progress else "false",
    }
    if partial_progress:
        options["partial-progress.max-commits"] = str(c.partial_progress_max_commits)
    waiting = len(candidates) - len(chosen)
    extra = f"; {waiting} more wait for the next run" if waiting else ""
    reason = (
        f"{len(chosen)} of {len(state.partitions)} partitions over the small-file trigger "
        f"({small_files} files < {_fmt_mb(small_limit)}, "
        f"worst {chosen[0][0]} in {dict(chosen[0][2].partition)})"
        f"{extra}"
    )
    return ActionPlan("rewrite_data_files", True, reason, metrics, {"where": where, "options": options})


def plan_expiry(policy: TablePolicy, state: TableState, now: datetime) -> ActionPlan:
    """Count the snapshots that ``older_than`` + ``retain_last`` would remove."""
    s = policy.snapshots
    older_than = now - timedelta(hours=s.max_age_hours)
    newest_first = sorted(state.snapshots, key=lambda x: (x.committed_at, x.snapshot_id), reverse=True)
    kept = {x.snapshot_id for x in newest_first[: s.retain_last]} | set(state.ref_snapshot_ids)
    if state.current_snapshot_id is not None:
        kept.add(state.current_snapshot_id)
    expirable = [x for x in newest_first if x.committed_at < older_than and x.snapshot_id not in kept]
    metrics = {
        "snapshots": len(state.snapshots),
        "expirable": len(expirable),
        "snapshots_after": len(state.snapshots) - len(expirable),
        "older_than": older_than.isoformat(),
        "oldest_snapshot_at": newest_first[-1].committed_at.isoformat() if newest_first else None,
    }
    params = {"older_than": older_than.isoformat(), "retain_last": s.retain_last}
    if len(expirable) < s.min_expirable:
        return ActionPlan(
            "expire_snapshots", False,
            f"{len(expirable)} of {len(state.snapshots)} snapshots are older than {s.max_age_hours} h "
            f"outside the newest {s.retain_last} (need {s.min_expirable})", metrics, params,
        )
    return ActionPlan(
        "expire_snapshots", True,
        f"{len(expirable)} of {len(state.snapshots)} snapshots older than {s.max_age_hours} h beyond the "
        f"newest {s.retain_last}", metrics, params,
    )


def plan_manifests(policy: TablePolicy, state: TableState, compaction_due: bool) -> ActionPlan:
    """Rewrite manifests when the current snapshot has too many."""
    limit = policy.manifests.max_manifests
    metrics = {"manifests": state.manifests, "max_manifests": limit}
    if state.manifests > limit:
        return ActionPlan("rewrite_manifests", True, f"{state.manifests} manifests > {limit}", metrics)
    if compaction_due and state.manifests > 1:
        # Compaction adds manifests of its own; grouping them afterwards is cheap.
        return ActionPlan(
            "rewrite_manifests", True,
            f"{state.manifests} manifests, and compaction will add more (limit {limit})", metrics,
        )
    return ActionPlan("rewrite_manifests", False, f"{state.manifests} manifests <= {limit}", metrics)


def plan_orphans(policy: TablePolicy, history: MaintenanceHistory, now: datetime) -> ActionPlan:
    """Run orphan cleanup on its own, slower cadence, never below the 3-day floor."""
    o = policy.orphans
    older_than = now - timedelta(hours=policy.orphan_older_than_hours)
    params = {"older_than": older_than.isoformat()}
    last = history.last_orphans_at
    metrics = {
        "last_orphans_at": last.isoformat() if last else None,
        "cadence_days": o.cadence_days,
        "older_than_hours": policy.orphan_older_than_hours,
    }
    if last is not None and now - last < timedelta(days=o.cadence_days):
        age_days = (now - last).total_seconds() / 86400
        return ActionPlan(
            "remove_orphan_files", False,
            f"last cleanup {age_days:.1f} days ago < cadence {o.cadence_days} days", metrics, params,
        )
    why = "never cleaned" if last is None else f"last cleanup {(now - last).days} days ago"
    return ActionPlan(
        "remove_orphan_files", True,
        f"{why}; deleting unreferenced files older than {policy.orphan_older_than_hours:g} h",
        metrics, params,
    )


def asset_gate(
    policy: TablePolicy, state: TableState, history: MaintenanceHistory, now: datetime
) -> str | None:
    """Return why an asset-triggered run skips the table, or None when it should run."""
    t = policy.trigger
    if not t.asset_driven:
        return "not asset-driven (maintained by the daily run)"
    if history.last_run_at is not None:
        since = now - history.last_run_at
        if since < timedelta(minutes=t.min_interval_minutes):
            return (f"last maintenance {since.total_seconds() / 60:.0f} min ago < min interval "
                    f"{t.min_interval_minutes} min")
    new_commits = sum(
        1 for s in state.snapshots if history.last_run_at is None or s.committed_at > history.last_run_at
    )
    if new_commits < t.min_new_commits:
        return f"{new_commits} new commits since last maintenance < {t.min_new_commits}"
    return None


def plan_table(
    policy: TablePolicy,
    state: TableState,
    history: MaintenanceHistory,
    now: datetime,
    *,
    trigger: TriggerKind = "scheduled",
    partial_progress: bool = True,
) -> TablePlan:
    """Decide every action for one table; asset-triggered runs first pass :func:`asset_gate`."""
    now = now.astimezone(UTC)
    if trigger == "asset":
        gate = asset_gate(policy, state, history, now)
        if gate is not None:
            return TablePlan(state.identifier, now, trigger, (), skipped_reason=gate)
    if state.current_snapshot_id is None:
        return TablePlan(state.identifier, now, trigger, (), skipped_reason="table has no snapshot yet")
    compaction = plan_compaction(policy, state, partial_progress)
    actions = (
        compaction,
        plan_expiry(policy, state, now),
        plan_manifests(policy, state, compaction.due),
        plan_orphans(policy, history, now),
    )
    return TablePlan(state.identifier, now, trigger, actions)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromtimestamp(float(value) / 1000, tz=UTC)


def read_table_state(table: Table, identifier: str) -> TableState:
    """Read snapshots, current data files per partition, manifests and refs with pyiceberg."""
    from pyiceberg.transforms import IdentityTransform

    current = table.current_snapshot()
    snapshots = tuple(
        SnapshotInfo(int(row["snapshot_id"]), _as_utc(row["committed_at"]), row["operation"])
        for row in table.inspect.snapshots().to_pylist()
    )
    refs = frozenset(int(r.snapshot_id) for r in table.refs().values())
    if current is None:
        return TableState(identifier, None, snapshots, refs, (), 0)

    spec = table.spec()
    schema = table.schema()
    names = [f.name for f in spec.fields]
    columns = [schema.find_column_name(f.source_id) or f.name for f in spec.fields]
    identity = all(isinstance(f.transform, IdentityTransform) for f in spec.fields)
    files = table.inspect.data_files().select(["partition", "file_size_in_bytes"]).to_pylist()
    by_partition: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for row in files:
        values: Mapping[str, Any] = row["partition"] or {}
        key = tuple(
            (col if identity else name, values.get(name)) for name, col in zip(names, columns, strict=True)
        )
        by_partition.setdefault(key, []).append(int(row["file_size_in_bytes"]))
    partitions = tuple(
        PartitionFiles(key, tuple(sorted(sizes)), identity)
        for key, sizes in sorted(by_partition.items(), key=str)
    )
    manifests = table.inspect.manifests().num_rows
    return TableState(identifier, current.snapshot_id, snapshots, refs, partitions, manifests)
