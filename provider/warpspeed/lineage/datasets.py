"""Name every dataset a Warp Speed task reads or writes, and say what it read and wrote (pure).

One naming rule per kind of dataset, following the OpenLineage naming spec where it has one:

==================  ==========================================  ===================================
dataset             namespace                                   name
==================  ==========================================  ===================================
S3 object / folder  ``s3://<bucket>``                           ``<key>`` (no leading ``/``)
local file/folder   ``file``                                    ``/absolute/path``
SQS queue (AWS)     ``arn:aws:sqs:<region>:<account>``          ``<queue name>``
SQS-compatible      ``sqs://<host:port>``                       ``<account>/<queue name>``
Iceberg, REST       the catalog URI (``https://host/path``)     ``<namespace>.<table>``
Iceberg, Glue       ``arn:aws:glue:<region>:<glue.id>``         ``table/<namespace>/<table>``
Iceberg, SQL        the database URL without credentials        ``<namespace>.<table>``
==================  ==========================================  ===================================

The spec has no SQS convention: the ARN form mirrors its Glue one (an ``sqs://`` scheme has no
precedent). Iceberg tables are named by catalog and namespace, which is the ``symlinks`` TABLE
identifier the OpenLineage Spark listener puts on the table it writes, so the tasks' datasets and
the Spark applications' join in any lineage backend that follows symlinks. A Glue catalog's
namespace needs the account id: the catalog property ``glue.id``; without it the namespace stops
at the region.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from warpspeed.config.catalog import CatalogConfig

_AWS_SQS_HOST_PARTS = 4  # sqs.<region>.amazonaws.com


@dataclass(frozen=True)
class DatasetName:
    """A dataset's OpenLineage identity: ``namespace`` and ``name``."""

    namespace: str
    name: str


@dataclass(frozen=True)
class DatasetUse:
    """A dataset a task read or wrote, with what it knows of the rows.

    :param rows: rows read or written (the summaries' counts).
    :param rows_by_tenant: rows written per tenant (scores tables).
    :param files: files read or written, when known.
    """

    dataset: DatasetName
    rows: int | None = None
    rows_by_tenant: Mapping[str, int] | None = None
    files: int | None = None


@dataclass(frozen=True)
class Lineage:
    """What one task read and wrote, plus facts about its run (``warpspeed`` run facet)."""

    inputs: Sequence[DatasetUse] = ()
    outputs: Sequence[DatasetUse] = ()
    run: Mapping[str, Any] = field(default_factory=dict)


def storage_dataset(uri: str) -> DatasetName:
    """Name an object or folder of the storage (``s3://``, ``s3a://``, ``file://`` or a plain path)."""
    parts = urlsplit(uri)
    if parts.scheme in ("s3", "s3a", "s3n"):
        return DatasetName(f"s3://{parts.netloc}", parts.path.lstrip("/").rstrip("/") or "/")
    if parts.scheme in ("", "file"):
        return DatasetName("file", os.path.abspath(parts.path if parts.scheme else uri))
    return DatasetName(f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/")


def queue_dataset(queue_url: str) -> DatasetName:
    """Name an SQS queue by its URL: its ARN parts on AWS, else the server and path (ElasticMQ)."""
    parts = urlsplit(queue_url)
    path = parts.path.strip("/")
    host = parts.hostname or ""
    labels = host.split(".")
    account, _, queue = path.rpartition("/")
    if host.endswith(".amazonaws.com") and account and len(labels) >= _AWS_SQS_HOST_PARTS:
        region = labels[1] if labels[0] == "sqs" else labels[0]  # sqs.<region>.amazonaws.com, <region>.queue...
        return DatasetName(f"arn:aws:sqs:{region}:{account}", queue)
    return DatasetName(f"sqs://{parts.netloc}", path)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    scheme = parts.scheme.split("+", 1)[0]  # postgresql+psycopg2 -> postgresql
    return urlunsplit((scheme, netloc, parts.path, "", ""))


def catalog_namespace(catalog: CatalogConfig) -> str:
    """Return the namespace of the tables of ``catalog`` (see the module doc)."""
    if catalog.kind == "rest":
        return catalog.rest_uri().rstrip("/")
    if catalog.kind == "glue":
        account = catalog.properties.get("glue.id")
        return f"arn:aws:glue:{catalog.region or ''}" + (f":{account}" if account else "")
    if catalog.sqlite_path is not None:
        return f"sqlite://{catalog.sqlite_path}"
    return _without_credentials(catalog.uri)


def iceberg_table(catalog: CatalogConfig | None, identifier: str, catalog_name: str | None = None) -> DatasetName:
    """Name the Iceberg table ``identifier`` (``namespace.table``) of ``catalog``.

    :param catalog: the catalog, or None when only its name is known (``catalog_name``): the
        namespace is then ``iceberg://<catalog_name>``, the asset URI's authority.
    """
    if catalog is None:
        return DatasetName(f"iceberg://{catalog_name or 'warpspeed'}", identifier)
    namespace = catalog_namespace(catalog)
    if catalog.kind == "glue":
        database, _, table = identifier.rpartition(".")
        return DatasetName(namespace, f"table/{database}/{table}")
    return DatasetName(namespace, identifier)


def rows_by_tenant(summaries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Return rows written per tenant by batches, from their result summaries' members."""
    rows: dict[str, int] = {}
    for summary in summaries:
        for member in summary.get("members", []):
            if member.get("status") == "scored":
                tenant = str(member["tenant_id"])
                rows[tenant] = rows.get(tenant, 0) + int(member.get("rows") or 0)
    return dict(sorted(rows.items()))
