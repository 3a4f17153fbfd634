"""I/O of the single-node Arrow engine: documents, model loading, the scores table, commits.

No Spark and no ``warpspeed``: documents go through ``pyarrow.fs`` (``file://``, and ``s3://``
configured by the catalog's ``s3.*`` properties, as pyiceberg's own file IO is), tables through
pyiceberg. Messages match the Spark job's (:mod:`spark_jobs.flavours`), so a
result summary reads the same whichever engine wrote it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from spark_jobs.flavours import (
    FLAVOURS,
    LoadedModel,
    fetch_mlflow_model,
    load_expression,
    mlflow_inputs,
    model_fields,
    skops_serialized,
    unknown_flavour,
)
from spark_jobs.jobio import SCORES_TABLE_PROPERTIES
from spark_jobs.models import ModelError
from spark_jobs.skops_import import import_skops

EMPTY: Mapping[str, str] = {}


@lru_cache(maxsize=8)
def _file_io(properties: tuple[tuple[str, str], ...]) -> Any:
    from pyiceberg.io.pyarrow import PyArrowFileIO

    return PyArrowFileIO(dict(properties))


def _fs_and_path(uri: str, properties: Mapping[str, str] = EMPTY) -> tuple[Any, str]:
    """Return the pyarrow file system and path of ``uri``; ``s3://`` with the catalog's ``s3.*`` properties."""
    from pyarrow import fs

    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    if uri.startswith("file:"):
        return fs.FileSystem.from_uri(uri)
    io = _file_io(tuple(sorted(properties.items())))
    scheme, netloc, path = io.parse_location(uri, io.properties)
    return io.fs_by_scheme(scheme, netloc), path


def read_text(uri: str, properties: Mapping[str, str] = EMPTY) -> str:
    """Return the text of the document at ``uri``; FileNotFoundError if there is none.

    :param properties: the catalog's properties (``s3.endpoint``, keys...): how ``s3://`` is reached.
    """
    from pyarrow import fs

    filesystem, path = _fs_and_path(uri, properties)
    if filesystem.get_file_info(path).type == fs.FileType.NotFound:
        raise FileNotFoundError(uri)
    with filesystem.open_input_stream(path) as stream:
        return bytes(stream.read()).decode("utf-8")


def write_text(uri: str, text: str, properties: Mapping[str, str] = EMPTY) -> None:
    """Write ``text`` to ``uri``: a local file through a temporary name and a rename, S3 in one upload."""
    from pyarrow import fs

    filesystem, path = _fs_and_path(uri, properties)
    if isinstance(filesystem, fs.LocalFileSystem):
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    with filesystem.open_output_stream(path) as out:
        out.write(text.encode("utf-8"))


def load_model(
    model: str, version: str, spec: Mapping[str, Any], workdir: str | None = None,
    properties: Mapping[str, str] = EMPTY,
) -> tuple[LoadedModel, Any]:
    """Load and check one model version; return it and its pyfunc (None for expression models).

    Raise :class:`ModelError` saying why it cannot be used, as the Spark job does: such a
    version fails only its own members. Only :data:`~spark_jobs.flavours.SINGLE_NODE_FLAVOURS`
    load here (``spark_ml`` needs Spark: the router never sends it here). ``properties`` (the
    catalog's) say how ``s3://`` models are reached.
    """
    common = model_fields(model, version, spec)
    flavour = common["flavour"]
    if flavour == "expression":
        return load_expression(common, lambda uri: read_text(uri, properties)), None
    if flavour == "mlflow":
        return _load_mlflow(common, tuple(spec.get("inputs") or ()), workdir, properties)
    if flavour in FLAVOURS:
        raise ModelError(f"model {model} {version}: flavour {flavour} runs on the Spark engine only")
    raise unknown_flavour(model, version, flavour)


def copy_to_local(uri: str, dest: str, properties: Mapping[str, str] = EMPTY) -> None:
    """Copy the folder at ``uri`` (``s3://``) to the local path ``dest`` with pyarrow."""
    from pyarrow import fs

    filesystem, path = _fs_and_path(uri, properties)
    if filesystem.get_file_info(path).type == fs.FileType.NotFound:
        raise FileNotFoundError(uri)
    os.makedirs(dest, exist_ok=True)  # copy_files makes the subfolders it meets, not the top one
    fs.copy_files(path, dest, source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())


def _load_mlflow(common: dict[str, Any], declared: tuple[str, ...], workdir: str | None,
                 properties: Mapping[str, str]) -> tuple[LoadedModel, Any]:
    """Fetch and load an MLflow pyfunc model once (the Spark job's fetch and inputs rules)."""
    model, version, uri = common["model"], common["version"], common["uri"]
    path = fetch_mlflow_model(model, version, uri, tempfile.mkdtemp(prefix="warpspeed-models-", dir=workdir),
                              lambda src, dst: copy_to_local(src, dst, properties))
    inputs, types = mlflow_inputs(model, version, uri, path, declared)
    try:
        import mlflow.pyfunc

        if skops_serialized(path):
            import_skops()  # before MLflow imports it: seconds less in a process with Airflow loaded
        pyfunc = mlflow.pyfunc.load_model(path)
    except Exception as err:  # a missing library or any load failure fails only this model's members
        raise ModelError(f"model {model} {version} at {uri} failed to load: {type(err).__name__}: {err}") from None
    return LoadedModel(**common, inputs=inputs, input_types=types), pyfunc


def load_catalog(name: str, properties: Mapping[str, str]) -> Any:
    """Open the catalog; without ``properties`` pyiceberg reads ``~/.pyiceberg.yaml`` and ``PYICEBERG_*``."""
    from pyiceberg.catalog import load_catalog as load

    return load(name, **dict(properties))


def ensure_scores_table(catalog: Any, identifier: str, features: Any, tenant_column: str,
                        entity_key: Sequence[str]) -> Any:
    """Create the scores table if missing, as the Spark job's ``CREATE TABLE`` does; return it.

    Same columns in the same order (field ids 1..n, all optional), key types copied from the
    features table, :data:`~spark_jobs.jobio.SCORES_TABLE_PROPERTIES`, partitioned by identity(tenant),
    identity(model).
    """
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import DoubleType, NestedField, StringType, TimestamptzType

    source = features.schema()
    columns = [(tenant_column, source.find_field(tenant_column).field_type), ("model", StringType()),
               ("model_version", StringType()), *((k, source.find_field(k).field_type) for k in entity_key),
               ("score", DoubleType()), ("batch_id", StringType()), ("scored_at", TimestamptzType())]
    schema = Schema(*(NestedField(i, n, t, required=False) for i, (n, t) in enumerate(columns, start=1)))
    spec = PartitionSpec(PartitionField(1, 1000, IdentityTransform(), tenant_column),
                         PartitionField(2, 1001, IdentityTransform(), "model"))
    catalog.create_namespace_if_not_exists(identifier.rsplit(".", 1)[0])
    return catalog.create_table_if_not_exists(identifier, schema, partition_spec=spec,
                                              properties=SCORES_TABLE_PROPERTIES)


def slice_filter(pairs: Sequence[tuple[str, str]], tenant_column: str) -> Any:
    """Return the bound-value pyiceberg expression selecting exactly these (tenant, model) slices."""
    from functools import reduce

    from pyiceberg.expressions import AlwaysFalse, And, EqualTo, Or

    terms: list[Any] = [
        And(EqualTo(tenant_column, t), EqualTo("model", m))  # type: ignore[call-arg,arg-type]
        for t, m in sorted(set(pairs))
    ]
    return reduce(Or, terms) if terms else AlwaysFalse()
