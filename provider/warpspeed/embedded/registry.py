"""``warpspeed models publish``: copy a model version to where its workload's URI says it lives.

The URI comes from ``workloads.yaml`` (``models.<name>.uri``, default per flavour:
``{models_uri}/{model}/{version}`` for MLflow models and Spark ML pipelines, ``….json`` for
expression models), with ``{models_uri}`` the deployment's ``<storage_prefix>/models``. A
``models:/`` URI is MLflow's Model Registry: register the model there with MLflow instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import local_path
from warpspeed.window.manifests import models_uri


def version_uri(catalog: WorkloadCatalog, model: str, version: str, storage_prefix: str) -> str:
    """Return the URI of ``version`` of ``model``, as the workload that runs it resolves it."""
    for workload in catalog.workloads.values():
        if model in workload.models:
            return workload.models[model].resolve(models_uri(storage_prefix), version)
    known = sorted(m for w in catalog.workloads.values() for m in w.models)
    raise WarpSpeedConfigError(f"no workload runs model {model!r}; add it to workloads.yaml (configured: {known})")


def publish(source: Path, uri: str, s3_client: Callable[[], Any] | None = None) -> list[str]:
    """Copy ``source`` (a model folder, or a file) to ``uri`` (``file://`` or ``s3://``); return what was written.

    A version already published is replaced (its old files go first).
    """
    if not source.exists():
        raise WarpSpeedConfigError(f"{source} does not exist")
    scheme = urlparse(uri).scheme
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    if scheme in ("", "file"):
        target = local_path(uri)
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
        return [str(target / p.relative_to(source)) if source.is_dir() else str(target) for p in files]
    if scheme in ("s3", "s3a"):
        if s3_client is None:
            raise WarpSpeedConfigError(f"{uri}: publishing to S3 needs an S3 client")
        client = s3_client()
        bucket, prefix = urlparse(uri).netloc, urlparse(uri).path.strip("/")
        old = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        for page in old:
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        keys = [f"{prefix}/{p.relative_to(source).as_posix()}" if source.is_dir() else prefix for p in files]
        for path, key in zip(files, keys, strict=True):
            client.upload_file(str(path), bucket, key)
        return [f"s3://{bucket}/{k}" for k in keys]
    raise WarpSpeedConfigError(
        f"{uri}: publish writes to file:// or s3:// registries; for {scheme}:// register the model with MLflow"
    )
