"""Model flavours of the scoring job: load a (model, version) by URI and check its inputs.

``expression``: a JSON logistic model (:mod:`spark_jobs.models`) compiled to Spark SQL.
``mlflow``: any MLflow pyfunc model; the driver fetches it once (``file://`` by copy, ``s3://``,
``models:/`` with a registry), reads its inputs from ``MLmodel``, ships it as a zip with
``SparkContext.addArchive`` (Spark refuses ``addFile`` of a local folder on any master but
``local``: YARN on EMR, standalone), and executors load it once per Python worker process
(:func:`warm_pyfunc_models` before scoring, :func:`cached_pyfunc`).
``spark_ml``: a saved Spark ML ``PipelineModel``.

Every check happens when the model is loaded, before any row is scored, so a model whose
inputs the feature table lacks, or holds as something other than numbers
(:mod:`spark_jobs.feature_types`), fails only its own members. A flavour not in :data:`FLAVOURS`
fails its members with :func:`unknown_flavour`'s message; no flavour stands in for another.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spark_jobs.feature_types import non_numeric, non_numeric_reason
from spark_jobs.models import LogisticModel, ModelError, parse_model

FLAVOURS = ("expression", "mlflow", "spark_ml")
"""Every flavour the job loads (:func:`load_model`) and scores (:mod:`spark_jobs.scoring`). The
provider cannot be imported here (on a cluster only ``spark_jobs`` exists), so its registry
(``warpspeed.models.flavours``) lists them too; ``tests/unit/test_flavours.py`` keeps the two equal."""
DEFAULT_FLAVOUR = "expression"
"""The flavour of a model the manifest does not list, or lists without one."""
SINGLE_NODE_FLAVOURS = ("expression", "mlflow")
"""The flavours the single-node engine (:mod:`spark_jobs.score_arrow`) loads and scores."""
_PYFUNC_CACHE: dict[str, Any] = {}


@dataclass(frozen=True)
class LoadedModel:
    """One model version, loaded and checked, ready to score."""

    model: str
    version: str
    flavour: str
    uri: str
    inputs: tuple[str, ...]
    expression: LogisticModel | None = None
    pipeline: Any = None
    shipped_name: str | None = None
    output_column: str | None = None
    output_index: int | None = None
    input_types: tuple[tuple[str, str], ...] = ()
    """(input, type) as the model's own signature declares them (MLflow); a non-numeric one is its choice."""


def resolve_uri(spec: Mapping[str, Any], model: str, version: str) -> str:
    """Fill the URI template of a manifest's model entry for one version."""
    return str(spec["uri"]).format(
        model=model, version=version, version_number=version.removeprefix("v")
    )


def default_spec(models_uri: str) -> dict[str, Any]:
    """Return the entry of a model the manifest does not list (an expression model in the registry)."""
    return {"flavour": DEFAULT_FLAVOUR, "uri": f"{models_uri.rstrip('/')}/{{model}}/{{version}}.json"}


def model_fields(model: str, version: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Return the :class:`LoadedModel` fields a manifest's model entry fixes for one version."""
    return {"model": model, "version": version, "flavour": spec.get("flavour", DEFAULT_FLAVOUR),
            "uri": resolve_uri(spec, model, version), "output_column": spec.get("output_column"),
            "output_index": spec.get("output_index")}


def unknown_flavour(model: str, version: str, flavour: Any, known: Sequence[str] = FLAVOURS) -> ModelError:
    """Return the error of a model whose flavour is not one of ``known`` (the members fail with it)."""
    return ModelError(f"model {model} {version}: flavour {flavour!r} is not one of {', '.join(known)}")


def load_expression(common: dict[str, Any], read_text: Callable[[str], str]) -> LoadedModel:
    """Read and parse a JSON logistic model at ``common["uri"]`` with ``read_text`` (either engine's reader)."""
    model, version, uri = common["model"], common["version"], common["uri"]
    try:
        text = read_text(uri)
    except FileNotFoundError:
        raise ModelError(f"model {model} {version} not found at {uri}") from None
    try:
        parsed = parse_model(text, expect_model=model, expect_version=version)
    except ModelError as err:
        raise ModelError(f"model {model} {version} is invalid: {err}") from err
    return LoadedModel(**common, inputs=parsed.features, expression=parsed)


def load_model(spark: Any, model: str, version: str, spec: Mapping[str, Any]) -> LoadedModel:
    """Load and check one model version; raise :class:`ModelError` saying why it cannot be used."""
    common = model_fields(model, version, spec)
    flavour = common["flavour"]
    if flavour == "expression":
        from spark_jobs.jobio import read_text

        return load_expression(common, lambda uri: read_text(spark, uri))
    if flavour == "mlflow":
        return _load_mlflow(spark, common, tuple(spec.get("inputs") or ()))
    if flavour == "spark_ml":
        return _load_spark_ml(common, tuple(spec.get("inputs") or ()))
    raise unknown_flavour(model, version, flavour)


def _load_mlflow(spark: Any, common: dict[str, Any], declared: tuple[str, ...]) -> LoadedModel:
    """Fetch an MLflow model folder, read its inputs and ship it; the first load happens in the executors.

    A local folder (``file://`` or a path) is copied without importing MLflow; other URIs
    (``s3://``, ``models:/``) go through ``mlflow.artifacts``. The inputs come from the ``MLmodel``
    file itself. Whether the model loads is proven by :func:`warm_pyfunc_models` in the
    executors' Python workers, which keep it for scoring.
    """
    model, version, uri = common["model"], common["version"], common["uri"]
    from spark_jobs.jobio import copy_to_local

    path = fetch_mlflow_model(model, version, uri, tempfile.mkdtemp(prefix="warpspeed-models-"),
                              lambda src, dst: copy_to_local(spark, src, dst))
    inputs, types = mlflow_inputs(model, version, uri, path, declared)
    archive = ship_folder(spark, path)
    return LoadedModel(**common, inputs=inputs, input_types=types, shipped_name=archive)


def ship_folder(spark: Any, path: str) -> str:
    """Ship a local folder to every executor as a zip; return the name ``SparkFiles.get`` unpacks it under.

    ``SparkContext.addFile(folder, recursive=True)`` works on a ``local`` master only: YARN (EMR)
    and standalone masters refuse a local directory (``UNSUPPORTED_ADD_FILE.LOCAL_DIRECTORY``).
    ``addArchive`` ships a file, which every master takes, and unpacks it on each node. The name
    is unique to this run (the folder's).
    """
    archive = shutil.make_archive(path, "zip", root_dir=path)
    spark.sparkContext.addArchive(archive)
    return os.path.basename(archive)


def fetch_mlflow_model(model: str, version: str, uri: str, folder: str,
                       copy_folder: Callable[[str, str], None] | None = None) -> str:
    """Fetch an MLflow model's folder into ``folder`` under a unique name; return its path.

    A local folder (``file://`` or a path) is copied without importing MLflow; an ``s3://``
    folder with ``copy_folder(uri, path)`` when the engine gives one (its own S3 client: Hadoop's
    file system in Spark, pyarrow's in the single-node engine); other URIs (``models:/``) go
    through ``mlflow.artifacts``. Shared by both engines, so a missing model reads the same in
    every result summary.
    """
    path = os.path.join(folder, f"warpspeed-{model}-{version}-{uuid.uuid4().hex[:8]}")
    local = _local_folder(uri)
    if local is None and copy_folder is not None and uri.startswith(("s3://", "s3a://")):
        try:
            copy_folder(uri, path)
        except Exception as err:  # every copy failure means "not found" to the member
            raise ModelError(f"model {model} {version} not found at {uri}: {type(err).__name__}: {err}") from None
        local = path
    if local is not None:
        if not os.path.isfile(os.path.join(local, "MLmodel")):
            raise ModelError(f"model {model} {version} not found at {uri}: no MLmodel file")
        if local != path:
            shutil.copytree(local, path)
        return path
    try:
        import mlflow.artifacts
    except ImportError as err:
        raise ModelError(f"model {model} {version}: mlflow is not installed on the cluster ({err})") from None
    try:
        downloaded = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
    except Exception as err:  # every download failure means "not found" to the member
        raise ModelError(f"model {model} {version} not found at {uri}: {type(err).__name__}: {err}") from None
    os.rename(downloaded, path)
    return path


def mlflow_inputs(model: str, version: str, uri: str, path: str,
                  declared: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Return the model's inputs (``declared`` in workloads.yaml, else its signature's) and the signature's types."""
    try:
        meta = _mlmodel(path)
        inputs, types = declared or signature_names(meta), tuple(signature_types(meta).items())
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ModelError(f"model {model} {version} at {uri} failed to load: {type(err).__name__}: {err}") from None
    if not inputs:
        raise ModelError(f"model {model} {version} at {uri} has no input signature; set its inputs in workloads.yaml")
    return inputs, types


def _local_folder(uri: str) -> str | None:
    """Return the local folder a ``file:`` URI or plain path names, or None for remote URIs."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return url2pathname(parsed.path)
    return uri if parsed.scheme == "" else None


def signature_inputs(folder: str) -> tuple[str, ...]:
    """Return the named inputs of the signature in ``folder``'s ``MLmodel`` file (empty without one).

    Reads the YAML document directly: importing MLflow in the driver costs seconds per job.
    """
    return signature_names(_mlmodel(folder))


def skops_serialized(folder: str) -> bool:
    """Tell whether a flavour of the MLflow model in ``folder`` was saved in skops format."""
    flavors = (_mlmodel(folder) or {}).get("flavors")
    return isinstance(flavors, dict) and any(
        isinstance(f, dict) and f.get("serialization_format") == "skops" for f in flavors.values())


def _mlmodel(folder: str) -> Any:
    """Return the parsed ``MLmodel`` file of a model folder."""
    import yaml

    with open(os.path.join(folder, "MLmodel"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _signature_columns(meta: Any) -> list[dict[str, Any]]:
    """Return the named column specs of a parsed ``MLmodel`` document's input signature."""
    signature = meta.get("signature") if isinstance(meta, dict) else None
    spec = signature.get("inputs") if isinstance(signature, dict) else None
    columns = json.loads(spec) if isinstance(spec, str) else []
    return [c for c in columns if isinstance(c, dict) and isinstance(c.get("name"), str)]


def signature_names(meta: Any) -> tuple[str, ...]:
    """Return the named inputs of a parsed ``MLmodel`` document's signature (empty without one).

    Pure, so the provider's plan-time probe reads a signature the way the job does.
    """
    return tuple(c["name"] for c in _signature_columns(meta))


def signature_types(meta: Any) -> dict[str, str]:
    """Return input -> type (``double``, ``string``...) of a parsed ``MLmodel`` document's signature."""
    return {c["name"]: str(c["type"]) for c in _signature_columns(meta) if isinstance(c.get("type"), str)}


def warm_pyfunc_models(spark: Any, shipped_names: Sequence[str]) -> dict[str, str]:
    """Load each shipped pyfunc model in the executors' Python workers; return name -> why it failed.

    One small job with a task per core: each Python worker loads every model into
    :func:`cached_pyfunc`'s cache and keeps it, so scoring (``mapInArrow``, same kind of worker,
    reused) starts with the models loaded. This is the only load: the driver never imports MLflow
    for a local model.
    """
    names = list(shipped_names)
    if not names:
        return {}
    slots = max(1, int(spark.sparkContext.defaultParallelism))

    def load(batches: Any) -> Any:
        import pyarrow as pa

        for _ in batches:
            pass
        failed: dict[str, str] = {}
        for name in names:
            try:
                cached_pyfunc(name)
            except Exception as err:  # any failure to load fails only this model
                failed[name] = f"{type(err).__name__}: {err}"
        yield pa.RecordBatch.from_arrays([pa.array(list(failed), pa.string()), pa.array(list(failed.values()),
                                                                                         pa.string())],
                                         names=["name", "error"])

    rows = spark.range(0, slots, 1, slots).mapInArrow(load, "name string, error string").collect()
    return {row["name"]: row["error"] for row in rows}


def _load_spark_ml(common: dict[str, Any], declared: tuple[str, ...]) -> LoadedModel:
    from pyspark.ml import PipelineModel

    model, version, uri = common["model"], common["version"], common["uri"]
    try:
        pipeline = PipelineModel.load(uri)
    except Exception as err:  # a missing or broken pipeline fails only its members
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"model {model} {version} not loadable as a PipelineModel at {uri}: {first}") from None
    inputs = declared or tuple(dict.fromkeys(_stage_inputs(pipeline)))
    return LoadedModel(**common, inputs=inputs, pipeline=pipeline)


def _stage_inputs(pipeline: Any) -> list[str]:
    """Return the columns a pipeline's stages read that no earlier stage produces."""
    produced: set[str] = set()
    needed: list[str] = []
    for stage in pipeline.stages:
        for param in ("inputCol", "inputCols", "featuresCol"):
            if stage.hasParam(param) and stage.isDefined(param):
                value = stage.getOrDefault(param)
                for col in [value] if isinstance(value, str) else value:
                    if col not in produced:
                        needed.append(col)
        for param in ("outputCol", "outputCols", "predictionCol", "probabilityCol", "rawPredictionCol"):
            if stage.hasParam(param) and stage.isDefined(param):
                value = stage.getOrDefault(param)
                produced.update([value] if isinstance(value, str) else value)
    return needed


def check_inputs(loaded: LoadedModel, columns: Mapping[str, str] | Collection[str], table: str) -> None:
    """Refuse a model that reads columns the feature table lacks, or that are not numbers.

    :param columns: column -> type name (Spark SQL or Iceberg); a plain collection of names
        checks presence only.
    """
    missing = [c for c in loaded.inputs if c not in columns]
    if missing:
        raise ModelError(
            f"model {loaded.model} {loaded.version} needs columns {missing} that {table} lacks "
            f"(it has {sorted(columns)})"
        )
    if isinstance(columns, Mapping) and (found := non_numeric(loaded.inputs, columns, dict(loaded.input_types))):
        raise ModelError(non_numeric_reason(loaded.model, loaded.version, table, found))


def cached_pyfunc(shipped_name: str) -> Any:
    """Return the pyfunc model shipped as ``shipped_name``, loading it once per Python process."""
    model = _PYFUNC_CACHE.get(shipped_name)
    if model is None:
        import mlflow.pyfunc
        from pyspark import SparkFiles

        model = mlflow.pyfunc.load_model(SparkFiles.get(shipped_name))
        _PYFUNC_CACHE[shipped_name] = model
    return model


def pick_score(prediction: Any, output_column: str | None, output_index: int | None) -> Any:
    """Return the score column (float64 numpy array) of a pyfunc prediction.

    A DataFrame prediction: ``output_column`` by name, else ``output_index``, else its only
    column, else column 1. A 2-D array (``predict_proba``): column ``output_index``, default 1.
    A 1-D prediction is the score itself.
    """
    import numpy as np
    import pandas as pd

    if isinstance(prediction, pd.DataFrame):
        if output_column is not None:
            return prediction[output_column].to_numpy(dtype="float64")
        index = output_index if output_index is not None else (0 if prediction.shape[1] == 1 else 1)
        return prediction.iloc[:, index].to_numpy(dtype="float64")
    values = np.asarray(prediction)
    if values.ndim == 2:
        index = output_index if output_index is not None else (0 if values.shape[1] == 1 else 1)
        return values[:, index].astype("float64")
    return values.astype("float64").reshape(-1)
