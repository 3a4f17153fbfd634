"""Many callers racing for one pool cluster: a widened race window, moto's S3 made safe, and no lease.

The controls of ``tests/unit/test_emr_pool.py``: with the pool's lease the race creates one
cluster, without it (:class:`NoLease`) several.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.unit.emr_support import make_backend
from warpspeed.compute.base import ClusterRef
from warpspeed.hooks.emr import EmrPoolHook


@contextmanager
def slow_run_job_flow(seconds: float) -> Iterator[None]:
    """Widen the race window: every RunJobFlow waits before it is sent."""
    original = EmrPoolHook.create

    def create(self: EmrPoolHook, request: Any) -> str:
        time.sleep(seconds)
        return original(self, request)

    EmrPoolHook.create = create  # type: ignore[method-assign]
    try:
        yield
    finally:
        EmrPoolHook.create = original  # type: ignore[method-assign]


@contextmanager
def serial_s3_calls() -> Iterator[None]:
    """Serialise the pool's S3 calls: moto's S3 is not thread-safe for one key written at once.

    A PUT that replaces a key closes the old value's buffer, so a concurrent PUT or GET of that
    key can fail with ``I/O operation on closed file`` (real S3 takes concurrent PUTs: the last
    one wins). Only the no-lease control writes the registry from ten threads at once.
    """
    from warpspeed.storage.documents import S3Storage

    lock = threading.Lock()
    originals = {name: fn for name, fn in vars(S3Storage).items() if callable(fn) and not name.startswith("_")}

    def serialised(fn: Any) -> Any:
        def call(self: S3Storage, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return fn(self, *args, **kwargs)
        return call

    for name, fn in originals.items():
        setattr(S3Storage, name, serialised(fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(S3Storage, name, fn)


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

    with slow_run_job_flow(delay), ThreadPoolExecutor(callers) as pool:
        return list(pool.map(call, range(callers)))
