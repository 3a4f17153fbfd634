"""Workload lanes: which models each workload runs and how its windows are planned.

Loaded from ``dags/config/workloads.yaml``. A workload is one lane of work: its batches never
mix with another's, and it runs on its own cluster profile.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.config.fields import integer, named
from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.intake.schema import PRIORITY_RANK
from warpspeed.models.specs import ModelSpec, TableBinding, parse_models

WORKLOAD_KEYS = frozenset({
    "models", "profile", "planning", "description",
    "features_table", "entity_key", "tenant_column", "scores_table",
})

DEFAULT_PRIORITY_LANES: tuple[tuple[str, ...], ...] = tuple((p,) for p in PRIORITY_RANK)
"""One lane per priority, highest first: ``(("high",), ("normal",), ("low",))``."""

DEFAULT_SINGLE_NODE_MAX_ROWS = 100_000
"""Batches up to this many estimated rows run on the single-node Arrow engine (docs/scoring.md):
tens of MB of Arrow memory and well under a second of scoring in one process, where a Spark
application costs 8-10 s of JVM and session start locally and tens of seconds as an EMR step."""


def _lanes(value: Any) -> tuple[tuple[str, ...], ...]:
    """Normalise ``priority_lanes`` from YAML (``[high, [normal, low]]``) to a tuple of tuples."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise WarpSpeedConfigError(
            f"planning.priority_lanes must be a list of priorities or lists of priorities, got {value!r}"
        )
    lanes = []
    for lane in value:
        members = (lane,) if isinstance(lane, str) else lane
        if not isinstance(members, Sequence) or not members or not all(isinstance(m, str) for m in members):
            raise WarpSpeedConfigError(
                f"planning.priority_lanes: each lane is a priority or a non-empty list of them, got {lane!r}"
            )
        lanes.append(tuple(members))
    return tuple(lanes)


@dataclass(frozen=True)
class PlanningSettings:
    """How one workload's requests are packed into batches.

    :param rows_cap: most estimated rows (accounts x models) in one batch; a single tenant
        larger than this gets a batch of its own (it is never split).
    :param max_tenants_per_batch: most tenants in one batch.
    :param max_batches_per_window: batches submitted per window; the rest carries over to the
        next window.
    :param priority_lanes: ``high``, ``normal``, ``low`` in that order, grouped into lanes; each
        lane is packed on its own and its batches go before the next lane's.
        ``[high, [normal, low]]`` packs normal and low together.
    :param promote_after_windows: a carried-over request moves one lane up each time it has
        waited this many windows, so nothing starves behind newer high-priority work.
    :param single_node_max_rows: a batch of at most this many estimated rows whose models are
        all ``expression`` or ``mlflow`` runs on the single-node Arrow engine instead of Spark
        (:mod:`warpspeed.planning.routing`); 0 sends every batch to Spark.
    """

    rows_cap: int = 500_000
    max_tenants_per_batch: int = 50
    max_batches_per_window: int = 40
    priority_lanes: tuple[tuple[str, ...], ...] = DEFAULT_PRIORITY_LANES
    promote_after_windows: int = 2
    single_node_max_rows: int = DEFAULT_SINGLE_NODE_MAX_ROWS

    def __post_init__(self) -> None:
        for name in ("rows_cap", "max_tenants_per_batch", "max_batches_per_window", "promote_after_windows"):
            integer(f"planning.{name}", getattr(self, name))
        integer("planning.single_node_max_rows", self.single_node_max_rows, least=0,
                why="0 routes every batch to Spark")
        lanes = _lanes(self.priority_lanes)
        listed = [p for lane in lanes for p in lane]
        if listed != list(PRIORITY_RANK):
            raise WarpSpeedConfigError(
                f"planning.priority_lanes must list {', '.join(PRIORITY_RANK)} once each, in that order "
                f"(a lane may group neighbours, e.g. [high, [normal, low]]), got {self.priority_lanes!r}"
            )
        object.__setattr__(self, "priority_lanes", lanes)

    def lane_of(self, priority: str) -> int:
        """Return the index of the lane a priority is packed in (0 is submitted first)."""
        for index, lane in enumerate(self.priority_lanes):
            if priority in lane:
                return index
        raise WarpSpeedConfigError(f"priority {priority!r} is in no planning.priority_lanes lane")

    def lane_label(self, lane: int) -> str:
        """Return a lane's name, e.g. ``high`` or ``normal+low``."""
        return "+".join(self.priority_lanes[lane])


@dataclass(frozen=True)
class Workload:
    """One workload lane: its models, its tables, its cluster profile and its planning settings."""

    name: str
    models: Mapping[str, ModelSpec]
    profile: str
    planning: PlanningSettings
    tables: TableBinding = field(default_factory=TableBinding)

    def __post_init__(self) -> None:
        if isinstance(self.models, str) or not isinstance(self.models, Mapping):
            raise WarpSpeedConfigError(f"workload {self.name!r}: models must be a mapping of name to ModelSpec")
        if not self.models:
            raise WarpSpeedConfigError(f"workload {self.name!r} lists no models")
        for name, spec in self.models.items():
            if not isinstance(spec, ModelSpec) or spec.name != name:
                raise WarpSpeedConfigError(f"workload {self.name!r}: models.{name} must be a ModelSpec named {name!r}")
        if not isinstance(self.profile, str) or not self.profile:
            raise WarpSpeedConfigError(f"workload {self.name!r}: profile must be a profile name, got {self.profile!r}")

    @property
    def model_names(self) -> frozenset[str]:
        """Return the names of the models this workload runs."""
        return frozenset(self.models)

    def manifest_models(self, models_uri: str) -> dict[str, dict[str, Any]]:
        """Return model name -> what the Spark job needs to load it (for batch manifests)."""
        return {name: spec.to_manifest(models_uri) for name, spec in sorted(self.models.items())}

    def manifest_fields(self, models_uri: str) -> dict[str, Any]:
        """Return the :class:`~warpspeed.window.manifests.BatchManifest` fields naming this workload's data."""
        t = self.tables
        return {"features_table": t.features_table, "scores_table": t.scores_table, "entity_key": t.entity_key,
                "tenant_column": t.tenant_column, "models": self.manifest_models(models_uri)}


@dataclass(frozen=True)
class WorkloadCatalog:
    """Every configured workload, by name."""

    workloads: Mapping[str, Workload]

    @property
    def allowed_models(self) -> dict[str, frozenset[str]]:
        """Return workload name -> models it runs (what request validation needs)."""
        return {name: w.model_names for name, w in self.workloads.items()}

    def planning(self) -> dict[str, PlanningSettings]:
        """Return workload name -> planning settings."""
        return {name: w.planning for name, w in self.workloads.items()}

    def __getitem__(self, name: str) -> Workload:
        return named(self.workloads, name, f"unknown workload {name!r}")

    def __post_init__(self) -> None:
        owners: dict[str, str] = {}
        for name, workload in self.workloads.items():
            for model in workload.models:
                if model in owners:
                    raise WarpSpeedConfigError(
                        f"model {model!r} is listed under workloads {owners[model]!r} and {name!r}; a model "
                        f"belongs to one workload (requests name both, and its scores table slice is one)"
                    )
                owners[model] = name

    def check_profiles(self, profiles: Collection[str], source: str = "workloads config") -> None:
        """Refuse a workload whose cluster profile is not among ``profiles``."""
        for name, workload in sorted(self.workloads.items()):
            if workload.profile not in profiles:
                raise WarpSpeedConfigError(
                    f"{source}: workloads.{name}.profile: unknown cluster profile {workload.profile!r}; "
                    f"configured: {', '.join(sorted(profiles)) or 'none'}"
                )

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "workloads config") -> WorkloadCatalog:
        """Build the catalog from the parsed YAML document."""
        raw = doc.get("workloads") if isinstance(doc, Mapping) else None
        if not isinstance(raw, Mapping) or not raw:
            raise WarpSpeedConfigError(f"{source}: expected a non-empty 'workloads:' mapping")
        workloads = {}
        for name, spec in raw.items():
            if not isinstance(spec, Mapping):
                raise WarpSpeedConfigError(f"{source}: workloads.{name} must be a mapping")
            unknown = set(spec) - WORKLOAD_KEYS
            if unknown:
                raise WarpSpeedConfigError(
                    f"{source}: workloads.{name} has unknown keys {sorted(map(str, unknown))}; "
                    f"known: {', '.join(sorted(WORKLOAD_KEYS))}"
                )
            raw_planning = spec.get("planning") or {}
            if not isinstance(raw_planning, Mapping):
                raise WarpSpeedConfigError(f"{source}: workloads.{name}.planning must be a mapping")
            unknown = set(raw_planning) - set(PlanningSettings.__dataclass_fields__)
            if unknown:
                raise WarpSpeedConfigError(
                    f"{source}: workloads.{name}.planning has unknown keys {sorted(unknown)}"
                )
            profile = spec.get("profile", name)
            if not isinstance(profile, str) or not profile:
                raise WarpSpeedConfigError(
                    f"{source}: workloads.{name}.profile must be a profile name, got {profile!r}"
                )
            try:
                planning = PlanningSettings(**raw_planning)
                tables = TableBinding(**{k: spec[k] for k in TableBinding.__dataclass_fields__ if k in spec})
                workloads[str(name)] = Workload(
                    name=str(name), models=parse_models(spec.get("models")), profile=profile,
                    planning=planning, tables=tables,
                )
            except (WarpSpeedConfigError, TypeError) as err:
                raise WarpSpeedConfigError(f"{source}: workloads.{name}: {err}") from err
        try:
            return cls(workloads)
        except WarpSpeedConfigError as err:
            raise WarpSpeedConfigError(f"{source}: {err}") from err

    @classmethod
    def load(cls, path: str | Path, profiles_file: str | Path | None = None) -> WorkloadCatalog:
        """Read and validate a workloads YAML file.

        :param profiles_file: cluster profiles YAML whose names ``profile:`` must match;
            default: ``cluster_profiles.yaml`` beside ``path`` when it exists.
        """
        path = Path(path)
        catalog = cls.from_dict(read_mapping(path, "workloads"), source=str(path))
        profiles = Path(profiles_file) if profiles_file else path.with_name(PROFILES_FILE_NAME)
        if profiles_file or profiles.exists():
            names = read_mapping(profiles, "cluster profiles").get("profiles")
            catalog.check_profiles(set(names) if isinstance(names, Mapping) else set(), str(path))
        return catalog


PROFILES_FILE_NAME = "cluster_profiles.yaml"
