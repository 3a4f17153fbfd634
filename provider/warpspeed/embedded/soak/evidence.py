"""Read what the pipeline left behind into the auditor's :class:`~.audit.Evidence`.

Only durable records: the request queue and the DLQ (read directly from the SQS server, not
through the fault proxy), the intake manifests and plan documents, the batch manifests, the
ledger table, the scores table and the features table (pyiceberg; each slice is counted against
its tenant's accounts by the live test's :func:`warpspeed.embedded.demo.check_pairs`). Reading
the queues receives their messages (hidden for ``hide_seconds``), so call it once the pipeline
is stopped or paused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from warpspeed.embedded.demo import check_pairs
from warpspeed.embedded.soak.audit import (
    BatchRecord,
    DlqEntry,
    Evidence,
    LedgerRow,
    Member,
    PlanRecord,
    Slice,
    WindowIntake,
)
from warpspeed.embedded.soak.producer import SentMessage
from warpspeed.intake.rules import REASONS_ATTRIBUTE
from warpspeed.ledger.tables import BATCH_RUNS_TABLE, SCORES_TABLE
from warpspeed.storage.documents import Storage, join_uri, storage_for
from warpspeed.window.manifests import BatchManifest, IntakeManifest

SOURCE_ATTRIBUTE = "warpspeed_source_message_id"


def drain_queue(client: Any, queue_url: str, hide_seconds: int = 900) -> list[dict[str, Any]]:
    """Receive every message of ``queue_url`` (hidden ``hide_seconds`` so none is seen twice)."""
    out: dict[str, dict[str, Any]] = {}
    empty = 0
    while empty < 3:
        resp = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                      VisibilityTimeout=hide_seconds, MessageAttributeNames=["All"])
        messages = resp.get("Messages", [])
        empty = 0 if messages else empty + 1
        for m in messages:
            out[m["MessageId"]] = m
    return list(out.values())


def dlq_entries(messages: Sequence[Mapping[str, Any]]) -> list[DlqEntry]:
    """Turn DLQ messages into entries (empty reasons when the attribute is missing or blank)."""
    def attr(m: Mapping[str, Any], name: str) -> str:
        return str((m.get("MessageAttributes") or {}).get(name, {}).get("StringValue") or "").strip()

    return [DlqEntry(str(m["MessageId"]), attr(m, SOURCE_ATTRIBUTE), attr(m, REASONS_ATTRIBUTE)) for m in messages]


def read_windows(storage_prefix: str, storage: Storage | None = None
                 ) -> tuple[list[WindowIntake], list[PlanRecord], list[BatchRecord]]:
    """Read every window's intake manifest, plan document and batch manifests.

    :param storage: the storage of ``storage_prefix`` (default: :func:`storage_for` it, for a local folder).
    """
    storage = storage or storage_for(storage_prefix)
    root = join_uri(storage_prefix, "windows") + "/"
    folders: dict[str, dict[str, list[str]]] = {}
    for uri in storage.list(root.rstrip("/")):
        window, _, rest = uri.partition(root)[2].partition("/")
        kind = "batches" if rest.startswith("batches/") and rest.endswith(".json") else rest
        folders.setdefault(window, {}).setdefault(kind, []).append(uri)
    intakes, plans, batches = [], [], []
    for window in sorted(folders):
        files = folders[window]
        for uri in files.get("intake.json", []):
            m = IntakeManifest.from_json(storage.read_text(uri))
            sources = {r.request_id: m.sources.get(r.request_id, "") for r in m.requests}
            intakes.append(WindowIntake(m.window_id, sources, frozenset(d.message_id for d in m.duplicates),
                                        frozenset(r.message_id for r in m.rejected)))
        for uri in files.get("plan.json", []):
            doc = json.loads(storage.read_text(uri))
            superseded = {s["request_id"]: s["reason"] for s in doc.get("superseded", [])}
            refused = {r["request_id"]: r["reason"] for r in doc.get("refused", [])}
            plans.append(PlanRecord(doc["window_id"], superseded, refused))
        for uri in sorted(files.get("batches", [])):
            b = BatchManifest.from_json(storage.read_text(uri))
            batches.append(BatchRecord(b.batch_id, b.window_id,
                                       tuple(Member(r.request_id, r.tenant_id, r.model) for r in b.members)))
    return intakes, plans, batches


def read_ledger(catalog: Any) -> list[LedgerRow]:
    """Read ``warpspeed.batch_runs`` (batch id, status, finished at)."""
    rows = catalog.load_table(BATCH_RUNS_TABLE).scan(
        selected_fields=("batch_id", "status", "finished_at")).to_arrow().to_pylist()
    return [LedgerRow(str(r["batch_id"]), str(r["status"]), r["finished_at"].isoformat() if r["finished_at"] else "")
            for r in rows]


def read_slices(catalog: Any) -> tuple[dict[tuple[str, str], Slice], dict[str, int]]:
    """Read the scores table's (tenant, model) slices and their tenants' accounts in the features table.

    Return (slices: the batch ids each holds, its rows and distinct accounts; tenant -> accounts
    in the features table), the counts from :func:`~warpspeed.embedded.demo.check_pairs`, the
    rule the live test holds a window to.
    """
    rows = catalog.load_table(SCORES_TABLE).scan(selected_fields=("tenant_id", "model", "batch_id")).to_arrow()
    ids: dict[tuple[str, str], set[str]] = {}
    for r in rows.group_by(["tenant_id", "model", "batch_id"]).aggregate([]).to_pylist():
        ids.setdefault((r["tenant_id"], r["model"]), set()).add(str(r["batch_id"]))
    if not ids:
        return {}, {}
    checks = check_pairs(catalog, set(ids))
    slices = {(c.tenant_id, c.model): Slice(frozenset(ids[(c.tenant_id, c.model)]), c.scores, c.distinct_accounts)
              for c in checks}
    return slices, {c.tenant_id: c.accounts for c in checks}


def gather(*, sent: Sequence[SentMessage], storage_prefix: str, catalog: Any, sqs_client: Any, queue_url: str,
           dlq_url: str, run_states: Mapping[str, str], kills: int, faults: int,
           storage: Storage | None = None) -> Evidence:
    """Read every record into :class:`Evidence` (``storage``: that of ``storage_prefix``, e.g. S3)."""
    intakes, plans, batches = read_windows(storage_prefix, storage)
    slices, features = read_slices(catalog)
    return Evidence(
        sent=sent, intakes=intakes, plans=plans, batches=batches, ledger=read_ledger(catalog),
        slices=slices, features=features,
        queue_left=[str(m.get("Body", "")) for m in drain_queue(sqs_client, queue_url, hide_seconds=60)],
        dlq=dlq_entries(drain_queue(sqs_client, dlq_url)), run_states=dict(run_states), kills=kills, faults=faults,
    )


__all__ = ["dlq_entries", "drain_queue", "gather", "read_ledger", "read_slices", "read_windows"]
