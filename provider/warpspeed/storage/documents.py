"""Read and write small documents under a storage prefix: a local folder or ``s3://``.

Manifests and result summaries are a few kilobytes each, so a minimal interface suffices: the
same code serves the embedded stack (``file://`` URIs) and production (``s3://`` URIs). Writes
are atomic: a reader sees either the old document or the whole new one, never a torn file.
"""

from __future__ import annotations

import os
import re
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from warpspeed.exceptions import WarpSpeedConfigError


class Storage(Protocol):
    """What Warp Speed needs of a storage system."""

    def read_text(self, uri: str) -> str:
        """Return the document at ``uri``; raise ``FileNotFoundError`` if it does not exist."""

    def write_text(self, uri: str, text: str) -> None:
        """Write ``text`` to ``uri`` atomically, replacing what was there."""

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to ``uri`` atomically, replacing what was there."""

    def exists(self, uri: str) -> bool:
        """Tell whether a document exists at ``uri``."""

    def list(self, prefix_uri: str) -> list[str]:
        """Return the URIs of documents under ``prefix_uri``, sorted."""

    def delete(self, uri: str) -> None:
        """Delete the document at ``uri``; deleting a missing one is not an error."""


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a URI without doubling or dropping slashes."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def local_path(uri: str) -> Path:
    """Return the filesystem path of a ``file://`` URI or plain path."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    raise WarpSpeedConfigError(f"{uri!r} is not a local path or file:// URI")


class LocalStorage:
    """Storage on the local filesystem (``file://`` URIs or plain paths)."""

    def read_text(self, uri: str) -> str:
        """Return the document at ``uri``."""
        return local_path(uri).read_text(encoding="utf-8")

    def write_text(self, uri: str, text: str) -> None:
        """Write through a temporary file and an atomic rename."""
        self.write_bytes(uri, text.encode("utf-8"))

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write through a temporary file and an atomic rename."""
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, uri: str) -> bool:
        """Tell whether the file exists."""
        return local_path(uri).is_file()

    def delete(self, uri: str) -> None:
        """Remove the file if it is there."""
        local_path(uri).unlink(missing_ok=True)

    def list(self, prefix_uri: str) -> list[str]:
        """Return ``file://`` URIs of the files below the folder, sorted."""
        root = local_path(prefix_uri)
        if not root.is_dir():
            return []
        return sorted(
            f"file://{p}" for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
        )


class S3Storage:
    """Storage on Amazon S3 (``s3://bucket/key`` URIs); a PUT is atomic by itself."""

    def __init__(self, client_factory: Any = None) -> None:
        self._client_factory = client_factory

    @cached_property
    def client(self) -> Any:
        """Build the S3 client lazily (from the factory, else default boto3 credentials)."""
        if self._client_factory is not None:
            return self._client_factory()
        import boto3

        return boto3.client("s3")

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def read_text(self, uri: str) -> str:
        """Return the object's body as text."""
        bucket, key = self._split(uri)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey as err:
            raise FileNotFoundError(uri) from err
        return str(body.decode("utf-8"))

    def write_text(self, uri: str, text: str) -> None:
        """Put the object in one request."""
        self._put(uri, text.encode("utf-8"))

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Put the object in one request."""
        self._put(uri, data)

    def _put(self, uri: str, data: bytes) -> None:
        bucket, key = self._split(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def exists(self, uri: str) -> bool:
        """Tell whether the object exists."""
        bucket, key = self._split(uri)
        resp = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(obj["Key"] == key for obj in resp.get("Contents", []))

    def delete(self, uri: str) -> None:
        """Delete the object (S3 answers success for a missing key too)."""
        bucket, key = self._split(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def list(self, prefix_uri: str) -> list[str]:
        """Return ``s3://`` URIs under the prefix, sorted."""
        bucket, key = self._split(prefix_uri)
        paginator = self.client.get_paginator("list_objects_v2")
        uris = [
            f"s3://{bucket}/{obj['Key']}"
            for page in paginator.paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/")
            for obj in page.get("Contents", [])
        ]
        return sorted(uris)


def storage_for(uri: str, s3_client_factory: Any = None) -> Storage:
    """Return the storage implementation for a URI's scheme."""
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        return LocalStorage()
    if scheme in ("s3", "s3a"):
        return S3Storage(s3_client_factory)
    raise WarpSpeedConfigError(
        f"Unsupported storage URI {uri!r}: use a local folder (file://...) or s3://bucket/prefix"
    )


def upload_folder(storage: Storage, folder: Path, uri: str) -> list[str]:
    """Copy every file below ``folder`` to the same relative path under ``uri``; return their URIs."""
    uris = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        target = join_uri(uri, *path.relative_to(folder).parts)
        storage.write_bytes(target, path.read_bytes())
        uris.append(target)
    return uris


def run_key(run_id: str) -> str:
    """Return a storage-safe folder name for a DAG run id (or any identifier)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_") or "run"
