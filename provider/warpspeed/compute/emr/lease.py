"""Mutual exclusion of spin-or-reuse per workload, across processes and hosts.

EMR's RunJobFlow has no idempotency token, so the cluster pool serialises spin-or-reuse per
workload with a lease under the storage prefix:

* ``s3://`` prefix: ``<prefix>/locks/emr/<workload>.lease`` taken with an S3 conditional
  write (``PutObject If-None-Match: *``). A lease older than its TTL (the holder died) is
  taken over with ``If-Match: <etag>``, a compare-and-swap, so two waiters cannot both take
  it; release is ``DeleteObject If-Match: <etag>`` (on a server without conditional deletes, a
  conditional write that expires the lease in place).
* local prefix (tests, single host): ``fcntl.flock`` on ``<prefix>/locks/emr/<workload>.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from warpspeed.exceptions import WarpSpeedConfigError, WarpSpeedError
from warpspeed.storage.documents import join_uri, local_path


class PoolLease(Protocol):
    """Mutual exclusion of spin-or-reuse per workload across processes and hosts."""

    def hold(self, workload: str) -> contextlib.AbstractContextManager[None]:
        """Hold the workload's lease for the duration of the ``with`` block."""


class FileLease:
    """Lease with ``fcntl.flock`` on a local file (one host; each ``open`` is its own lock)."""

    def __init__(
        self, folder: Path, wait_seconds: float = 600.0, sleep: Callable[[float], None] = time.sleep
    ):
        self.folder = folder
        self.wait_seconds = wait_seconds
        self.sleep = sleep

    @contextlib.contextmanager
    def hold(self, workload: str) -> Iterator[None]:
        """Block (polling) until the lock is ours; release on exit."""
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        with (self.folder / f"{workload}.lock").open("a") as fh:
            attempt = 0
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarpSpeedError(
                            f"timed out waiting for the EMR pool lock of {workload}"
                        ) from None
                    self.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.0))
                    attempt += 1
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class S3Lease:
    """Lease held as an S3 object created with a conditional write (see the module doc)."""

    def __init__(
        self,
        s3_client: Any,
        prefix_uri: str,
        *,
        ttl_seconds: float = 300.0,
        wait_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        parsed = urlparse(prefix_uri)
        self.client = s3_client
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.ttl = ttl_seconds
        self.wait_seconds = wait_seconds
        self.sleep = sleep
        self.clock = clock
        self.owner = f"{os.uname().nodename}:{os.getpid()}"

    def _key(self, workload: str) -> str:
        return f"{self.prefix}/{workload}.lease".lstrip("/")

    @staticmethod
    def _conflict(err: ClientError) -> bool:
        code = err.response.get("Error", {}).get("Code")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)

    def _body(self, token: str) -> bytes:
        expires = self.clock() + timedelta(seconds=self.ttl)
        return json.dumps({"owner": self.owner, "token": token, "expires_at": expires.isoformat()}).encode()

    def _try_take(self, key: str, token: str) -> str | None:
        """Create the lease, or take over an expired one; return its ETag or None."""
        try:
            return str(
                self.client.put_object(Bucket=self.bucket, Key=key, Body=self._body(token), IfNoneMatch="*")[
                    "ETag"
                ]
            )
        except ClientError as err:
            if not self._conflict(err):
                raise
        try:
            current = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None  # released meanwhile: try again at once next round
            raise
        held = json.loads(current["Body"].read() or b"{}")
        expires = datetime.fromisoformat(held.get("expires_at", "1970-01-01T00:00:00+00:00"))
        if expires > self.clock():
            return None
        try:
            return str(
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=self._body(token), IfMatch=current["ETag"]
                )["ETag"]
            )
        except ClientError as err:
            if self._conflict(err):
                return None
            raise

    @contextlib.contextmanager
    def hold(self, workload: str) -> Iterator[None]:
        """Wait for the lease (jittered polling), hold it, release it with If-Match."""
        key = self._key(workload)
        token = hashlib.sha256(f"{self.owner}:{time.time_ns()}:{random.random()}".encode()).hexdigest()[:16]
        deadline = time.monotonic() + self.wait_seconds
        attempt = 0
        while (etag := self._try_take(key, token)) is None:
            if time.monotonic() > deadline:
                raise WarpSpeedError(f"timed out waiting for the EMR pool lease s3://{self.bucket}/{key}")
            self.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
            attempt = min(attempt + 1, 6)
        try:
            yield
        finally:
            self._release(key, etag)

    def _release(self, key: str, etag: str) -> None:
        """Delete our lease if it is still ours; where conditional deletes are missing, expire it in place."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
            return
        except ClientError as err:
            if self._conflict(err):
                return  # our lease expired and someone took it over: theirs now, leave it
            if err.response.get("Error", {}).get("Code") != "NotImplemented":
                raise
        # An S3-compatible server without conditional deletes (S3Proxy 4.0 answers 501; AWS has them
        # since 2025-09-16): a conditional write marks the lease expired, which the next taker takes
        # over as it takes over a dead holder's. An unconditional delete could remove a successor's.
        released = {"owner": self.owner, "token": "released", "expires_at": "1970-01-01T00:00:00+00:00"}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(released).encode(), IfMatch=etag)
        except ClientError as err:
            if not self._conflict(err):
                raise


def lease_for(storage_prefix: str, s3_client_factory: Callable[[], Any] | None = None) -> PoolLease:
    """Return the lease implementation for the storage prefix's scheme."""
    root = join_uri(storage_prefix, "locks", "emr")
    if urlparse(storage_prefix).scheme in ("s3", "s3a"):
        if s3_client_factory is None:
            raise WarpSpeedConfigError("an s3:// storage prefix needs an S3 client for the EMR pool lease")
        return S3Lease(s3_client_factory(), root)
    return FileLease(local_path(root))


