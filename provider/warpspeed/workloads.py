"""Workload lanes: which models each workload runs and how its windows are planned.

Loaded from ``dags/config/workloads.yaml``. A workload is one lane of work: its batches never
mix with another's, and it runs on its own cluster profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warpspeed.exceptions import WarpSpeedConfigError


@dataclass(frozen=True)
class PlanningSettings:
    """How one workload's requests are packed into batches.

    :param rows_cap: most estimated rows (accounts x models) in one batch; a single tenant
        larger than this gets a batch of its own.
    :param max_tenants_per_batch: most tenants in one batch.
    :param max_batches_per_window: batches submitted per window; the rest carries over.
    """

    rows_cap: int = 500_000
    max_tenants_per_batch: int = 50
    max_batches_per_window: int = 40

    def __post_init__(self) -> None:
        for name in ("rows_cap", "max_tenants_per_batch", "max_batches_per_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise WarpSpeedConfigError(f"planning.{name} must be a positive integer, got {value!r}")


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
            try:
                planning = PlanningSettings(**(spec.get("planning") or {}))
            except TypeError as err:
                raise WarpSpeedConfigError(f"{source}: workloads.{name}.planning: {err}") from err
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
