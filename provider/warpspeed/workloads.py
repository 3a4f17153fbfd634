"""Workload lanes: which models each workload runs and how its windows are planned.

Loaded from ``dags/config/workloads.yaml``. A workload is one lane of work: its batches never
mix with another's, and it runs on its own cluster profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.request_schema import PRIORITY_RANK

DEFAULT_PRIORITY_LANES: tuple[tuple[str, ...], ...] = tuple((p,) for p in PRIORITY_RANK)
"""One lane per priority, highest first: ``(("high",), ("normal",), ("low",))``."""


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
    """

    rows_cap: int = 500_000
    max_tenants_per_batch: int = 50
    max_batches_per_window: int = 40
    priority_lanes: tuple[tuple[str, ...], ...] = DEFAULT_PRIORITY_LANES
    promote_after_windows: int = 2

    def __post_init__(self) -> None:
        for name in ("rows_cap", "max_tenants_per_batch", "max_batches_per_window", "promote_after_windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WarpSpeedConfigError(f"planning.{name} must be a positive integer, got {value!r}")
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
    """One workload lane."""

    name: str
    models: frozenset[str]
    profile: str
    planning: PlanningSettings

    def __post_init__(self) -> None:
        if not self.models:
            raise WarpSpeedConfigError(f"workload {self.name!r} lists no models")


@dataclass(frozen=True)
class WorkloadCatalog:
    """Every configured workload, by name."""

    workloads: Mapping[str, Workload]

    @property
    def allowed_models(self) -> dict[str, frozenset[str]]:
        """Return workload name -> models it runs (what request validation needs)."""
        return {name: w.models for name, w in self.workloads.items()}

    def planning(self) -> dict[str, PlanningSettings]:
        """Return workload name -> planning settings."""
        return {name: w.planning for name, w in self.workloads.items()}

    def __getitem__(self, name: str) -> Workload:
        try:
            return self.workloads[name]
        except KeyError:
            raise WarpSpeedConfigError(
                f"unknown workload {name!r}; configured: {', '.join(sorted(self.workloads))}"
            ) from None

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
            unknown = set(spec) - {"models", "profile", "planning", "description"}
            if unknown:
                raise WarpSpeedConfigError(f"{source}: workloads.{name} has unknown keys {sorted(unknown)}")
            raw_planning = spec.get("planning") or {}
            if not isinstance(raw_planning, Mapping):
                raise WarpSpeedConfigError(f"{source}: workloads.{name}.planning must be a mapping")
            unknown = set(raw_planning) - set(PlanningSettings.__dataclass_fields__)
            if unknown:
                raise WarpSpeedConfigError(
                    f"{source}: workloads.{name}.planning has unknown keys {sorted(unknown)}"
                )
            try:
                planning = PlanningSettings(**raw_planning)
            except WarpSpeedConfigError as err:
                raise WarpSpeedConfigError(f"{source}: workloads.{name}: {err}") from err
            workloads[str(name)] = Workload(
                name=str(name),
                models=frozenset(spec.get("models") or ()),
                profile=str(spec.get("profile") or name),
                planning=planning,
            )
        return cls(workloads)

    @classmethod
    def load(cls, path: str | Path) -> WorkloadCatalog:
        """Read and validate a workloads YAML file."""
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WarpSpeedConfigError(f"workloads file {path} does not exist") from None
        except yaml.YAMLError as err:
            raise WarpSpeedConfigError(f"workloads file {path} is not valid YAML: {err}") from err
        return cls.from_dict(doc, source=str(path))
