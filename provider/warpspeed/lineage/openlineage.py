"""Turn a task's :class:`~warpspeed.lineage.datasets.Lineage` into the OpenLineage provider's ``OperatorLineage``.

Imported only from ``get_openlineage_facets_on_complete`` (the OpenLineage provider calls it, so
it is installed): the provider stays optional, extra ``warpspeed-airflow-provider[openlineage]``.
Row counts go in the standard ``outputStatistics`` / ``inputStatistics`` facets; rows per tenant
in the ``warpspeed_tenantRows`` output facet; facts of the run (window, batches) in the
``warpspeed`` run facet (Airflow owns ``processing_engine`` and the other standard run keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attr
from airflow.providers.common.compat.openlineage.facet import (
    InputDataset,
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
)
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.generated.base import OutputDatasetFacet, RunFacet
from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet

from warpspeed.lineage.datasets import DatasetUse, Lineage
from warpspeed.provider_info import DOCUMENTATION_URL

TENANT_ROWS_FACET = "warpspeed_tenantRows"
RUN_FACET = "warpspeed"
_SCHEMA = f"{DOCUMENTATION_URL}/ops.md#lineage"


class _WarpSpeedFacet:
    """What Warp Speed's facets share: their schema is a section of the ops guide (``<_SCHEMA>-<_section>``)."""

    _section: ClassVar[str]

    @classmethod
    def _get_schema(cls) -> str:
        return f"{_SCHEMA}-{cls._section}"


@attr.define
class TenantRowsOutputDatasetFacet(_WarpSpeedFacet, OutputDatasetFacet):
    """Rows a task wrote to a scores table, per tenant."""

    rowsByTenant: dict[str, int] = attr.field(factory=dict)
    _additional_skip_redact: ClassVar[list[str]] = ["rowsByTenant"]
    _section: ClassVar[str] = "tenant-rows"


@attr.define
class WarpSpeedRunFacet(_WarpSpeedFacet, RunFacet):
    """What a Warp Speed task's run was about (window id, workload, batch counts...)."""

    details: dict[str, Any] = attr.field(factory=dict)
    _additional_skip_redact: ClassVar[list[str]] = ["details"]
    _section: ClassVar[str] = "run"


def _statistics(use: DatasetUse, key: str, facet: Any) -> dict[str, Any]:
    """Return the standard row and file count facet of a dataset use under ``key``, when it has counts."""
    if use.rows is None and use.files is None:
        return {}
    return {key: facet(rowCount=use.rows, fileCount=use.files)}


def _input(use: DatasetUse) -> InputDataset:
    facets = _statistics(use, "inputStatistics", InputStatisticsInputDatasetFacet)
    return InputDataset(namespace=use.dataset.namespace, name=use.dataset.name, inputFacets=facets)


def _output(use: DatasetUse) -> OutputDataset:
    facets = _statistics(use, "outputStatistics", OutputStatisticsOutputDatasetFacet)
    if use.rows_by_tenant is not None:
        facets[TENANT_ROWS_FACET] = TenantRowsOutputDatasetFacet(rowsByTenant=dict(use.rows_by_tenant))
    return OutputDataset(namespace=use.dataset.namespace, name=use.dataset.name, outputFacets=facets)


def operator_lineage(lineage: Lineage | None) -> OperatorLineage:
    """Return the ``OperatorLineage`` of what a task read and wrote (empty when it recorded nothing)."""
    if lineage is None:
        return OperatorLineage()
    run: Mapping[str, Any] = {RUN_FACET: WarpSpeedRunFacet(details=dict(lineage.run))} if lineage.run else {}
    return OperatorLineage(inputs=[_input(u) for u in lineage.inputs], outputs=[_output(u) for u in lineage.outputs],
                           run_facets=dict(run))
