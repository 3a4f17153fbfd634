"""The same window on the local backend: score a rehearsed window's batches locally and compare row for row.

:func:`score_locally` copies what the window read (its batch manifests, the features of its
tenants, the models) from the rehearsal into a scratch state folder (a SQLite catalog, local
files), runs the same batches on the local backend (the warm local Spark engine; small batches on
the single-node engine, in process), one after the other, and returns the scores.
:func:`compare_scores` matches them with the rehearsal's, row for row. The benchmark uses the
same run for ``rehearsal_vs_local_window``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warpspeed.compute.base import ClusterRef
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import seed
from warpspeed.ledger.tables import FEATURES_TABLE, SCORES_TABLE, ensure_tables
from warpspeed.operators.score import score_job
from warpspeed.storage.documents import join_uri, local_path, storage_for
from warpspeed.window.manifests import WindowLayout

if TYPE_CHECKING:
    from warpspeed.embedded.rehearsal.stack import RehearsalStack

KEY = ("tenant_id", "model", "model_version", "account_id")


@dataclass
class LocalRun:
    """The window's batches scored on the local backend."""

    scores: list[dict[str, Any]]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def _download_prefix(s3: Any, uri: str, folder: Path) -> int:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        for obj in page.get("Contents", []):
            target = folder / obj["Key"][len(prefix.rstrip("/")) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            count += 1
    return count


def score_locally(stack: RehearsalStack, remote: WarpSpeedSettings, window_id: str, scratch: Path) -> LocalRun:
    """Score the batches of ``window_id`` on the local backend in ``scratch``; return the scores and timings.

    ``seconds`` includes starting the warm engine (a local backend's first window). A second run on
    the same engine is not offered: the running engine keeps the scratch SQLite catalog locked, so
    the in-process single-node batch of a second run fails with SQLITE_BUSY (seen).
    """
    phases: dict[str, float] = {}
    began = time.monotonic()
    # a scratch state folder of files: no S3 server of its own to start (the scores are what is compared)
    local = WarpSpeedSettings.from_mapping({"home": str(scratch), "catalog_type": "sql",
                                            "storage_prefix": (scratch / "storage").as_uri()})
    storage, rehearsed = storage_for(local.storage_prefix), storage_for(stack.storage_prefix, stack.s3)
    plan = json.loads(rehearsed.read_text(WindowLayout(stack.storage_prefix, window_id).plan_uri))
    tenants = sorted({t for b in plan["batches"] for t in b["tenants"]})
    catalog = local.catalog.load()
    ensure_tables(catalog)
    features = remote.catalog.load().load_table(FEATURES_TABLE).scan().to_arrow()
    seed.write_features(catalog, features.filter(_in("tenant_id", tenants, features)))
    _download_prefix(stack.s3(), join_uri(stack.storage_prefix, "models"),
                     local_path(join_uri(local.storage_prefix, "models")))
    jobs = []
    for batch in plan["batches"]:
        text = rehearsed.read_text(batch["manifest_uri"]).replace(stack.storage_prefix, local.storage_prefix)
        uri = WindowLayout(local.storage_prefix, window_id).batch_uri(batch["batch_id"])
        storage.write_text(uri, text)
        jobs.append(score_job(uri, batch["batch_id"], local.catalog.name, batch["engine"]))
    phases["copy_inputs"] = round(time.monotonic() - began, 2)
    backend = LocalSparkBackend(local)
    try:
        began = time.monotonic()
        # one batch at a time: the scratch SQLite catalog takes one writer (seen: the Spark batch and
        # the in-process single-node one committing together both failed with SQLITE_BUSY)
        outcomes = [o for job in jobs for o in backend.run_jobs(ClusterRef("scoring", "local:scoring", "local"), [job])]
        seconds = time.monotonic() - began
        phases["local_window"] = round(seconds, 2)
    finally:
        stop_engine(local.home)
    scores = catalog.load_table(SCORES_TABLE).scan().to_arrow().to_pylist()
    return LocalRun(scores, seconds, phases, [f"{o.name}: {o.reason}" for o in outcomes if not o.succeeded])


def _in(column: str, values: list[str], table: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.is_in(table[column], value_set=pa.array(values))


def window_scores(remote: WarpSpeedSettings, batch_ids: set[str]) -> list[dict[str, Any]]:
    """Return the scores the rehearsal wrote for ``batch_ids`` (read with pyiceberg)."""
    rows = remote.catalog.load().load_table(SCORES_TABLE).scan().to_arrow().to_pylist()
    return [r for r in rows if r["batch_id"] in batch_ids]


def compare_scores(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], tolerance: float = 1e-12) -> list[str]:
    """Return the differences between two score sets keyed by (tenant, model, version, account); empty when equal."""
    mine = {tuple(r[k] for k in KEY): float(r["score"]) for r in ours}
    other = {tuple(r[k] for k in KEY): float(r["score"]) for r in theirs}
    problems = [f"only in the rehearsal: {k}" for k in sorted(set(mine) - set(other))][:5]
    problems += [f"only on the local backend: {k}" for k in sorted(set(other) - set(mine))][:5]
    problems += [f"{k}: {mine[k]!r} vs {other[k]!r}" for k in sorted(set(mine) & set(other))
                 if abs(mine[k] - other[k]) > tolerance][:5]
    if len(mine) != len(ours) or len(other) != len(theirs):
        problems.append(f"duplicate keys: {len(ours) - len(mine)} in the rehearsal, {len(theirs) - len(other)} locally")
    return problems
