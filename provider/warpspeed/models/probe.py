"""Check, at plan time, that the model versions a window asks for exist and fit their feature table.

The plan task calls :func:`probe_models` before planning: a version that is missing, or whose
inputs its workload's feature table lacks, is *unavailable*. The planner never lets a request
for an unavailable version supersede one for an available version (issue 13 item 4), and the
plan document lists each unavailable version with its reason. A request that still names one
(no valid alternative) is refused by the plan task (:mod:`warpspeed.planning.refusals`): it goes
to the dead-letter queue with the reason and into no batch. A version that passes the probe but fails to load in the
job fails only its batch's members, and that batch is recorded as failed.

Each flavour's registry entry (:mod:`warpspeed.models.flavours`) reads a version's inputs
without loading the model (no MLflow or Spark on the Airflow worker); this module compares them
with the feature table's columns and sorts the failures into unavailable (for good) and
undecided (the table or the storage could not be read). ``models:/`` URIs need the registry and
are left to the Spark job. A flavour the registry does not know cannot reach here (the workloads
file is refused when loaded); if one does, the probe raises instead of guessing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.models.flavours import flavour_named
from warpspeed.storage.documents import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unavailable:
    """A (model, version) that cannot be scored, and why."""

    workload: str
    model: str
    version: str
    reason: str
    permanent: bool = True
    """False when the probe could not tell (the feature table or the document could not be read):
    such a request is not refused, its batch decides."""


def probe_models(
    workloads: WorkloadCatalog,
    requested: Iterable[tuple[str, str, str]],
    storage: Storage,
    models_uri: str,
    table_columns: Callable[[str], Collection[str]],
) -> list[Unavailable]:
    """Return the requested (workload, model, version) triples that cannot be scored, with reasons.

    :param table_columns: feature table identifier -> its column names (raises if missing).
    :raises WarpSpeedConfigError: a model's flavour is not in the registry (loading the workloads
        file refuses one, so only a spec changed after loading gets here); no check is guessed.
    """
    columns: dict[str, Collection[str] | str] = {}
    found = []
    for workload_name, model, version in sorted(set(requested)):
        workload = workloads.workloads.get(workload_name)
        spec = workload.models.get(model) if workload else None
        if workload is None or spec is None:
            continue  # intake refuses these; nothing to probe
        flavour = flavour_named(spec.flavour, f"workloads.{workload_name}: models.{model}.flavour")
        uri = spec.resolve(models_uri, version)
        if uri.startswith("models:/"):
            continue
        table = workload.tables.features_table
        if table not in columns:
            try:
                columns[table] = set(table_columns(table))
            except Exception as err:  # any catalog failure makes the table unusable
                columns[table] = f"feature table {table} cannot be read: {type(err).__name__}: {err}"
        reason, permanent = None, True
        have = columns[table]
        try:
            inputs = flavour.read_inputs(model, uri, spec.inputs, storage)
            if isinstance(have, str):
                reason, permanent = have, False
            elif missing := [c for c in inputs if c not in have]:
                reason = f"model {model} {version} needs columns {missing} that {table} lacks"
        except FileNotFoundError:
            reason, permanent = f"model {model} {version} not found at {uri}", not isinstance(have, str)
        except (ValueError, LookupError, TypeError) as err:  # a broken document makes the version unusable
            reason = f"model {model} {version} at {uri} is unusable: {type(err).__name__}: {err}"
        except Exception as err:  # e.g. storage unreachable: not a property of the version
            reason, permanent = f"model {model} {version} at {uri} cannot be read: {type(err).__name__}: {err}", False
        if reason:
            found.append(Unavailable(workload_name, model, version, reason, permanent))
    for item in found:
        log.warning("Unavailable model version (%s): %s", item.workload, item.reason)
    return found


def unavailable_pairs(found: Iterable[Unavailable]) -> frozenset[tuple[str, str]]:
    """Return the (model, version) pairs the planner must not let win a dedupe."""
    return frozenset((u.model, u.version) for u in found)


def unavailable_document(found: Iterable[Unavailable]) -> list[Mapping[str, Any]]:
    """Return the plan document's ``unavailable_models`` list."""
    return [{"workload": u.workload, "model": u.model, "model_version": u.version, "reason": u.reason}
            for u in found]
