"""S3 requests per window: count them by component and operation, price them with S3's request prices.

S3 bills requests by class (the price table's ``s3`` block, from the S3 pricing page): PUT, COPY,
POST and LIST requests at ``put_per_1000``; GET, HEAD and every other request at
``get_per_1000``; DELETE and multipart aborts are free. On Iceberg tables the bill is driven by
the GETs and HEADs of every scan (one per manifest list, manifest and data file), which snapshot
expiry and compaction cut.

Where the counts come from: on the embedded stack, the counting proxy's request log
(``<home>/s3/requests.jsonl``, one line per request with its time, the component whose key
signed it, the operation and the status; :mod:`warpspeed.embedded.s3_proxy`). In production
the same rows come from S3 server access logs or CloudTrail data events (``docs/ops.md``).
A window's requests are those its steps' components (intake, plan, score, publish) made while
its run was going: the scoring DAG runs one window at a time (``max_active_runs=1``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from warpspeed.config.s3 import WINDOW_COMPONENTS
from warpspeed.ledger.prices import S3Prices

PUT_CLASS = frozenset({
    "PutObject", "CopyObject", "PostObject", "UploadPart", "UploadPartCopy", "CreateMultipartUpload",
    "CompleteMultipartUpload", "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListParts",
    "ListMultipartUploads", "ListBuckets", "CreateBucket", "PutBucketLifecycleConfiguration",
})
"""Billed as "PUT, COPY, POST, LIST requests"."""
FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload", "DeleteBucket"})
"""DELETE and CANCEL requests are free."""
GET_HEAD = frozenset({"GetObject", "GetObjectRange", "HeadObject"})
"""The reads a table scan makes (billed as "GET, SELECT and all other requests")."""
REQUEST_LOG_SOURCE = "embedded-s3-proxy"


def request_class(operation: str) -> str:
    """Return how S3 bills ``operation``: ``put``, ``get`` or ``free``."""
    return "put" if operation in PUT_CLASS else "free" if operation in FREE else "get"


def requests_cost(by_operation: Mapping[str, int], prices: S3Prices) -> float:
    """Return what these requests cost (operation -> count) at ``prices``."""
    classes: Counter[str] = Counter()
    for operation, count in by_operation.items():
        classes[request_class(operation)] += count
    return prices.requests_cost(classes["get"], classes["put"])


def read_request_log(path: Path, start: float | None = None, end: float | None = None) -> Iterator[dict[str, Any]]:
    """Yield the request log's records made in ``[start, end]`` (epoch seconds; None: unbounded)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line cut by a crash of the proxy's process
            continue
        t = float(record.get("t", 0))
        if (start is None or t >= start) and (end is None or t <= end):
            yield record


def count_requests(records: Iterable[Mapping[str, Any]],
                   components: Iterable[str] | None = WINDOW_COMPONENTS) -> Counter[tuple[str, str]]:
    """Count records by ``(component, operation)``, only ``components``' (None: every component's)."""
    wanted = None if components is None else frozenset(components)
    return Counter((str(r["component"]), str(r["op"])) for r in records
                   if wanted is None or r.get("component") in wanted)


def get_head(counts: Mapping[tuple[str, str], int]) -> int:
    """Return how many of the counted requests are GETs and HEADs of objects."""
    return sum(n for (_, operation), n in counts.items() if operation in GET_HEAD)


@dataclass(frozen=True)
class S3RequestRow:
    """One ``warpspeed.s3_requests`` row: a window's requests of one (component, operation)."""

    window_id: str
    window_start: datetime
    component: str
    operation: str
    request_class: str
    requests: int
    cost_usd: float
    measured_from: datetime
    measured_to: datetime
    source: str
    recorded_at: datetime


def window_rows(window_id: str, window_start: datetime, counts: Mapping[tuple[str, str], int], prices: S3Prices,
                *, span: tuple[datetime, datetime], source: str = REQUEST_LOG_SOURCE) -> list[S3RequestRow]:
    """Return the ledger rows of one window's counted requests (made during ``span``), priced."""
    now = span[1]
    return [
        S3RequestRow(window_id, window_start, component, operation, request_class(operation), n,
                     requests_cost({operation: n}, prices), span[0], span[1], source, now)
        for (component, operation), n in sorted(counts.items())
    ]


def per_window(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int, float]]:
    """Return ``window_id -> (requests, GETs + HEADs, cost)`` of ``warpspeed.s3_requests`` rows."""
    out: dict[str, list[float]] = {}
    for row in rows:
        agg = out.setdefault(str(row["window_id"]), [0, 0, 0.0])
        n = int(row.get("requests") or 0)
        agg[0] += n
        agg[1] += n if row.get("operation") in GET_HEAD else 0
        agg[2] += float(row.get("cost_usd") or 0.0)
    return {w: (int(a[0]), int(a[1]), a[2]) for w, a in out.items()}
