"""Many callers racing for one pool cluster: a widened race window, atomic moto requests, and no lease.

The controls of ``tests/unit/test_emr_pool.py``: with the pool's lease the race creates one
cluster, without it (:class:`NoLease`) several.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

from moto.core.botocore_stubber import BotocoreStubber

from tests.unit.emr_support import make_backend
from warpspeed.compute.base import ClusterRef
from warpspeed.hooks.emr import EmrPoolHook


def slow_run_job_flow(seconds: float) -> AbstractContextManager[Any]:
    """Widen the race window: every RunJobFlow waits before it is sent."""
    original = EmrPoolHook.create

    def create(self: EmrPoolHook, request: Any) -> str:
        time.sleep(seconds)
        return original(self, request)

    return patch.object(EmrPoolHook, "create", create)


def atomic_aws_requests() -> AbstractContextManager[Any]:
    """Let moto answer one request at a time, as AWS applies each request atomically.

    moto's in-process backends are not thread-safe: a PUT that replaces an S3 key closes the
    old value's buffer under a concurrent GET (``I/O operation on closed file``), and
    ListClusters can see a cluster RunJobFlow has not finished building (``'Cluster' object
    has no attribute 'state'``). Real S3 and EMR never show a half-applied request. The race
    stays a race: callers still interleave freely between requests, which is where a missing
    lease lets two of them create a cluster.
    """
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    return patch.object(BotocoreStubber, "process_request", process_request)


class NoLease:
    @contextmanager
    def hold(self, workload: str) -> Iterator[None]:
        yield


def race(tmp_path: Path, callers: int, lease_factory: Any, delay: float = 0.05) -> list[ClusterRef]:
    barrier = threading.Barrier(callers)

    def call(_: int) -> ClusterRef:
        backend = make_backend(tmp_path)
        if lease_factory is not None:
            backend._lease = lease_factory()
        barrier.wait()
        return backend.ensure_cluster("scoring", "scoring")

    with atomic_aws_requests(), slow_run_job_flow(delay), ThreadPoolExecutor(callers) as pool:
        return list(pool.map(call, range(callers)))
