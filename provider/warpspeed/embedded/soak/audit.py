"""The soak's auditor: pure decisions over what the pipeline left behind.

It trusts nothing the pipeline reports about itself (no task states, no run summaries): it
takes the producer's record of every message sent and the durable records (:class:`Evidence`,
read by :mod:`.evidence`) and decides for each message what became of it. Definitions (also in
docs/intake.md, "The soak"):

* **valid**: distinct request ids the producer sent in a valid body.
* **scored exactly once**: a valid id that is a member of exactly one *succeeded* batch (a
  ledger row with status ``success``; several rows of one batch id are one batch), and whose
  (tenant, model) slice of the scores table holds rows of one batch only, with one row per
  account, that batch being this one or one that scored the same pair later (ledger
  ``finished_at``), so the later batch superseded it with a record.
* **scored twice**: a valid id that is a member of two or more succeeded batches.
* **superseded with record**: a valid id in no succeeded batch, listed in a plan's
  ``superseded`` with ``superseded by <id>``, where that id is in a succeeded batch or is itself
  superseded with a record.
* **dead-lettered (valid)**: a valid id in no succeeded batch whose message (by SQS message id)
  is in the DLQ with reasons (e.g. ``too many receives``).
* **lost**: a valid id that is none of the above (the ids still in the request queue included).
* **dead-lettered with / without reason**: DLQ entries with a non-empty ``warpspeed_reasons``
  attribute, and those without (SQS's own redrive, which says nothing).
* **unaccounted**: a sent message (any kind) found in no record: not the source of a manifest
  request, not in a manifest's ``duplicates``, not in the DLQ. A hostile message must be in the
  DLQ, except one for a version that does not exist (``unknown_version``: intake collects it,
  the plan task refuses it to the DLQ), which may instead be superseded with a record by a valid
  request for its pair.
* **hostile scored**: a hostile message's request id in a succeeded batch (an unknown version
  scored, or a batch recorded as succeeded although a member could not be scored).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warpspeed.embedded.soak.producer import EXPECT_DEAD_LETTER, EXPECT_DUPLICATE, EXPECT_REQUEST, SentMessage

SUCCESS = "succeeded"  # the ledger status of a batch whose every member was scored


@dataclass(frozen=True)
class WindowIntake:
    """One window's intake manifest: request id -> source message id, duplicates, refused."""

    window_id: str
    sources: Mapping[str, str]
    duplicate_messages: frozenset[str] = frozenset()
    rejected_messages: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PlanRecord:
    """One window's plan document: superseded request id -> reason."""

    window_id: str
    superseded: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)
    """Request id -> reason of the requests the plan task refused to the DLQ."""


@dataclass(frozen=True)
class Member:
    """One request of a batch manifest."""

    request_id: str
    tenant_id: str
    model: str


@dataclass(frozen=True)
class BatchRecord:
    """One batch manifest."""

    batch_id: str
    window_id: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class LedgerRow:
    """One row of ``warpspeed.batch_runs``."""

    batch_id: str
    status: str
    finished_at: str = ""


@dataclass(frozen=True)
class Slice:
    """One (tenant, model) slice of the scores table."""

    batch_ids: frozenset[str]
    rows: int
    accounts: int


@dataclass(frozen=True)
class DlqEntry:
    """One DLQ message: its source message id and reasons attributes (empty when absent)."""

    message_id: str
    source_message_id: str = ""
    reasons: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything the auditor reads."""

    sent: Sequence[SentMessage]
    intakes: Sequence[WindowIntake]
    plans: Sequence[PlanRecord]
    batches: Sequence[BatchRecord]
    ledger: Sequence[LedgerRow]
    slices: Mapping[tuple[str, str], Slice]
    queue_left: Sequence[str]
    """Bodies still in the request queue."""
    dlq: Sequence[DlqEntry]
    run_states: Mapping[str, str] = field(default_factory=dict)
    """Scoring run id -> state."""
    kills: int = 0
    faults: int = 0


@dataclass(frozen=True)
class SoakReport:
    """The audit's figures (``SOAK {json}``) and a few examples of what went wrong."""

    figures: dict[str, Any]
    examples: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        """Tell whether nothing was lost, doubled, dead-lettered without a reason or unaccounted."""
        f = self.figures
        return not (f["lost"] or f["scored_twice"] or f["dead_lettered_without_reason"] or f["unaccounted"]
                    or f["hostile_scored"])


def _succeeded(ledger: Sequence[LedgerRow]) -> dict[str, str]:
    """Return succeeded batch id -> latest finished_at (a rerun of a batch is one batch)."""
    out: dict[str, str] = {}
    for row in ledger:
        if row.status == SUCCESS:
            out[row.batch_id] = max(out.get(row.batch_id, ""), row.finished_at)
    return out


def audit(ev: Evidence) -> SoakReport:
    """Decide, for every message sent, what became of it; count."""
    import json

    succeeded = _succeeded(ev.ledger)
    batches = {b.batch_id: b for b in ev.batches}
    scored_in: dict[str, set[str]] = {}
    pair_batches: dict[tuple[str, str], set[str]] = {}
    for batch_id in succeeded:
        for m in batches[batch_id].members if batch_id in batches else ():
            scored_in.setdefault(m.request_id, set()).add(batch_id)
            pair_batches.setdefault((m.tenant_id, m.model), set()).add(batch_id)
    superseded = {rid: reason for p in ev.plans for rid, reason in p.superseded.items()}
    dlq_sources = {d.source_message_id: d for d in ev.dlq if d.source_message_id}
    sources = {mid for w in ev.intakes for mid in w.sources.values()}
    dup_messages = {mid for w in ev.intakes for mid in w.duplicate_messages}
    in_queue: set[str] = set()
    for body in ev.queue_left:
        try:
            doc = json.loads(body)
            in_queue.add(str(doc.get("request_id")))
        except (ValueError, AttributeError):
            continue

    messages_of: dict[str, list[str]] = {}
    valid: dict[str, SentMessage] = {}
    for s in ev.sent:
        if s.request_id and s.expect in (EXPECT_REQUEST, EXPECT_DUPLICATE):
            messages_of.setdefault(s.request_id, []).append(s.message_id)
            if s.expect == EXPECT_REQUEST:
                valid[s.request_id] = s

    def superseded_ok(rid: str, depth: int = 0) -> bool:
        reason = superseded.get(rid, "")
        if not reason.startswith("superseded by ") or depth > 50:
            return False
        by = reason.removeprefix("superseded by ").split()[0]
        return len(scored_in.get(by, ())) == 1 or superseded_ok(by, depth + 1)

    outcome: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    def note(kind: str, what: str) -> None:
        outcome[kind] += 1
        if len(examples.setdefault(kind, [])) < 10:
            examples[kind].append(what)

    for rid, s in valid.items():
        owners = scored_in.get(rid, set())
        if len(owners) >= 2:
            note("scored_twice", f"{rid} in {sorted(owners)}")
        elif len(owners) == 1:
            (batch_id,) = owners
            pair = (s.tenant_id or "", s.model or "")
            sl = ev.slices.get(pair)
            later = {b for b in pair_batches.get(pair, ()) if succeeded[b] >= succeeded[batch_id]}
            if sl is None:
                note("slice_missing", f"{rid}: no rows for {pair}")
            elif len(sl.batch_ids) != 1 or not sl.batch_ids <= later:
                note("slice_wrong", f"{rid}: {pair} holds {sorted(sl.batch_ids)}, scored by {batch_id}")
            elif sl.rows != sl.accounts:
                note("slice_doubled_rows", f"{rid}: {pair} {sl.rows} rows for {sl.accounts} accounts")
            else:
                outcome["scored_exactly_once"] += 1
        elif superseded_ok(rid):
            outcome["superseded_with_record"] += 1
        elif any(m in dlq_sources and dlq_sources[m].reasons for m in messages_of.get(rid, ())):
            outcome["valid_dead_lettered_with_reason"] += 1
        else:
            where = ("still in the queue" if rid in in_queue
                     else "collected, never in a succeeded batch" if any(m in sources for m in messages_of[rid])
                     else "in no record")
            note("lost", f"{rid}: {where}")

    unaccounted = 0
    hostile = Counter[str]()
    refused = {rid for p in ev.plans for rid in p.refused}
    for s in ev.sent:
        recorded = s.message_id in sources or s.message_id in dup_messages or s.message_id in dlq_sources
        settled = s.message_id in dlq_sources
        if s.expect == EXPECT_DEAD_LETTER:
            d = dlq_sources.get(s.message_id)
            hostile["with_reason" if d is not None and d.reasons else "missing"] += 1
            if s.request_id and s.request_id in refused:
                hostile["refused_by_plan"] += 1
            if s.request_id and s.request_id in scored_in:
                note("hostile_scored", f"{s.request_id} ({s.kind}) in {sorted(scored_in[s.request_id])}")
            if s.request_id and not settled and superseded_ok(s.request_id):
                hostile["superseded"] += 1
                settled = True
        if (s.expect == EXPECT_DEAD_LETTER and not settled) or not recorded:
            unaccounted += 1
            if len(examples.setdefault("unaccounted", [])) < 10:
                examples["unaccounted"].append(f"{s.message_id} ({s.kind}, {s.request_id})")

    dlq_with = sum(1 for d in ev.dlq if d.reasons)
    scored_twice_slices = sum(1 for sl in ev.slices.values() if sl.rows != sl.accounts)
    figures = {
        "windows": len(ev.intakes),
        "requests_sent": len(ev.sent),
        "valid": len(valid),
        "scored_exactly_once": outcome["scored_exactly_once"],
        "lost": outcome["lost"] + outcome["slice_missing"] + outcome["slice_wrong"],
        "scored_twice": outcome["scored_twice"] + outcome["slice_doubled_rows"],
        "superseded_with_record": outcome["superseded_with_record"],
        "dead_lettered_with_reason": dlq_with,
        "dead_lettered_without_reason": len(ev.dlq) - dlq_with,
        "kills": ev.kills,
        "failed_windows": sum(1 for state in ev.run_states.values() if state == "failed"),
        "valid_dead_lettered_with_reason": outcome["valid_dead_lettered_with_reason"],
        "hostile_sent": sum(1 for s in ev.sent if s.expect == EXPECT_DEAD_LETTER),
        "hostile_dead_lettered_with_reason": hostile["with_reason"],
        "hostile_refused_by_plan": hostile["refused_by_plan"],
        "hostile_superseded_with_record": hostile["superseded"],
        "hostile_scored": outcome["hostile_scored"],
        "duplicates_sent": sum(1 for s in ev.sent if s.expect == EXPECT_DUPLICATE),
        "duplicates_recorded": sum(1 for s in ev.sent
                                   if s.expect != EXPECT_DEAD_LETTER and s.message_id in dup_messages),
        "unaccounted": unaccounted,
        "slices_with_doubled_rows": scored_twice_slices,
        "succeeded_batches": len(succeeded),
        "left_in_queue": len(ev.queue_left),
        "sqs_faults": ev.faults,
    }
    return SoakReport(figures, {k: v for k, v in examples.items() if v})
