"""Check, at plan time, that the model versions a window asks for exist and fit their feature table.

The plan task calls :func:`probe_models` before planning: a version that is missing, or whose
inputs its workload's feature table lacks or holds as something other than numbers
(:mod:`spark_jobs.feature_types`, the contract both engines enforce too), is *unavailable*. The
planner never lets a request for a version unavailable for good supersede one for another
version (issue 13 item 4, :func:`unavailable_pairs`), and the plan document lists each
unavailable version with its reason. A request that still names one (no valid alternative) is
refused by the plan task (:mod:`warpspeed.planning.refusals`): it goes to the dead-letter queue
with the reason and into no batch. A version that passes the probe but fails to load in the job
fails only its batch's members, and that batch is recorded as failed.

Each flavour's registry entry (:mod:`warpspeed.models.flavours`) reads a version's inputs
without loading the model (no MLflow or Spark on the Airflow worker); this module compares them
with the feature table's columns and sorts the failures into unavailable (for good) and
undecided (the table or the storage could not be read). Whether a version exists is the model
registry's answer (storage), never the catalog's: a missing version is unavailable for good
whatever the feature table's state, and the table is read only for a version that exists.
``models:/`` URIs need the registry and are left to the Spark job. A flavour the registry does
not know cannot reach here (the workloads file is refused when loaded); if one does, the probe
raises instead of guessing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spark_jobs.feature_types import non_numeric, non_numeric_reason
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
    table_columns: Callable[[str], Mapping[str, str] | Collection[str]],
) -> list[Unavailable]:
    """Return the requested (workload, model, version) triples that cannot be scored, with reasons.

    :param table_columns: feature table identifier -> its columns, name -> Iceberg type name
        (raises if the table cannot be read); a plain collection of names checks presence only.
        Asked once per table, and only for a version the registry holds.
    :raises WarpSpeedConfigError: a model's flavour is not in the registry (loading the workloads
        file refuses one, so only a spec changed after loading gets here); no check is guessed.
    """
    columns: dict[str, Mapping[str, str] | Collection[str] | str] = {}

    def columns_of(table: str) -> Mapping[str, str] | Collection[str] | str:
        if table not in columns:
            try:
                found = table_columns(table)
                columns[table] = dict(found) if isinstance(found, Mapping) else set(found)
            except Exception as err:  # any catalog failure makes the table unusable
                columns[table] = f"feature table {table} cannot be read: {type(err).__name__}: {err}"
        return columns[table]

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
        reason, permanent = None, True
        try:
            inputs = flavour.read_inputs(model, uri, spec.inputs, storage)
            have = columns_of(table)
            if isinstance(have, str):
                reason, permanent = have, False
            elif missing := [c for c in inputs if c not in have]:
                reason = f"model {model} {version} needs columns {missing} that {table} lacks"
            elif isinstance(have, Mapping) and non_numeric(inputs, have) and (  # then ask the version's own types
                    bad := non_numeric(inputs, have, flavour.read_input_types(uri, storage))):
                reason = non_numeric_reason(model, version, table, bad)
        except FileNotFoundError:  # the registry's answer: missing for good, whatever the table's state
            reason = f"model {model} {version} not found at {uri}"
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
    """Return the (model, version) pairs the planner must not let win a dedupe: those unavailable for good.

    An undecided version (the table or storage could not be read) is not among them: it may well
    be valid, and counting it would let a missing version's request win a dedupe against it by
    being newer (both "unavailable"), which superseded a valid request with one for a version
    that does not exist. Its batch decides.
    """
    return frozenset((u.model, u.version) for u in found if u.permanent)


def unavailable_document(found: Iterable[Unavailable]) -> list[Mapping[str, Any]]:
    """Return the plan document's ``unavailable_models`` list."""
    return [{"workload": u.workload, "model": u.model, "model_version": u.version, "reason": u.reason}
            for u in found]
