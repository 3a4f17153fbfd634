"""The soak's auditor: pure decisions over what the pipeline left behind.

It trusts nothing the pipeline reports about itself (no task states, no run summaries): it
takes the producer's record of every message sent and the durable records (:class:`Evidence`,
read by :mod:`.evidence`) and decides for each message what became of it. Definitions (also in
docs/intake.md, "The soak"):

* **valid**: distinct request ids the producer sent in a valid body.
* **scored exactly once**: a valid id that is a member of exactly one *succeeded* batch (a
  ledger row with status ``success``; several rows of one batch id are one batch), and whose
  (tenant, model) slice of the scores table holds rows of one batch only, that batch being this
  one or one that scored the same pair later (ledger ``finished_at``), and exactly one score per
  account the tenant has in the features table (the live test's rule,
  :class:`warpspeed.embedded.demo.PairCheck`; a slice of 1 row for a tenant of thousands is lost).
* **scored twice**: a valid id that is a member of two or more succeeded batches.
* **superseded with record**: a valid id in no succeeded batch, listed in a plan's
  ``superseded`` with ``superseded by <id>``, where that id was sent as a valid request for the
  same (tenant, model), newer (later ``requested_at``, or the same and a greater id: the
  planner's order), and is itself in exactly one succeeded batch or superseded with a record.
* **dead-lettered (valid)**: a valid id in no succeeded batch whose message (by SQS message id,
  or ``request:<id>`` for a plan refusal of a carried-over request) is in the DLQ with a reason
  the pipeline documents for a valid request
  (:data:`warpspeed.intake.dead_letter_reasons.VALID_REQUEST_REASONS`: too many receives, or a
  plan refusal that a plan document's ``refused`` also lists). Any other reason, or none, makes
  it **lost** (``valid_dead_lettered_undocumented`` counts them).
* **lost**: a valid id that is none of the above (the ids still in the request queue included).
* **dead-lettered with / without reason**: DLQ entries with a non-empty ``warpspeed_reasons``
  attribute, and those without (SQS's own redrive, which says nothing).
* **unaccounted**: a sent message (any kind) found in no record: not the source of a manifest
  request, not in a manifest's ``duplicates``, not in the DLQ. A hostile message must be in the
  DLQ, except one for a version that does not exist (``unknown_version``: intake collects it,
  the plan task refuses it to the DLQ), which may instead be superseded with a record by a valid
  request for its pair (of any age: a version that does not exist never wins a dedupe).
* **hostile scored**: a hostile message's request id in a succeeded batch (an unknown version
  scored, or a batch recorded as succeeded although a member could not be scored).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warpspeed.embedded.demo import PairCheck
from warpspeed.embedded.soak.producer import EXPECT_DEAD_LETTER, EXPECT_DUPLICATE, EXPECT_REQUEST, SentMessage
from warpspeed.intake.dead_letter_reasons import PLAN, documented_reason

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
    """One (tenant, model) slice of the scores table: the batches it holds, its rows and distinct accounts."""

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
    features: Mapping[str, int] = field(default_factory=dict)
    """Tenant -> its accounts in the features table (a tenant absent here has none)."""
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


def _newer(new: SentMessage, old: SentMessage) -> bool:
    """Tell whether ``new`` is later than ``old`` in the planner's order: requested-at instant, then request id."""
    try:
        return (datetime.fromisoformat(new.requested_at or ""), new.request_id or "") > (
            datetime.fromisoformat(old.requested_at or ""), old.request_id or "")
    except ValueError:  # a missing or unreadable time proves nothing
        return False


def _supersession(superseded: Mapping[str, str], sent: Mapping[str, SentMessage],
                  valid: Mapping[str, SentMessage], scored: Callable[[str], bool]) -> Callable[[str], bool]:
    """Return the check that a request id is superseded with a record.

    ``superseded by X`` holds when X was sent as a valid request for the same (tenant, model),
    X is newer than the request it replaced (unless that one was a hostile unknown-version
    request, which loses to a valid one of any age), and X is itself ``scored`` (a member of
    exactly one succeeded batch; its slice is X's own audit) or superseded with a record.
    """
    def ok(rid: str, depth: int = 0) -> bool:
        reason = superseded.get(rid, "")
        old = sent.get(rid)
        if not reason.startswith("superseded by ") or old is None or depth > 50:
            return False
        by = reason.removeprefix("superseded by ").split()[0]
        new = valid.get(by)
        if new is None or (new.tenant_id, new.model) != (old.tenant_id, old.model):
            return False
        if old.expect == EXPECT_REQUEST and not _newer(new, old):
            return False
        return scored(by) or ok(by, depth + 1)

    return ok


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
    refusals = {rid: reason for p in ev.plans for rid, reason in p.refused.items()}
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
    with_request: dict[str, SentMessage] = {}  # valid requests and hostile ones carrying a request id
    for s in ev.sent:
        if s.request_id and s.expect in (EXPECT_REQUEST, EXPECT_DUPLICATE):
            messages_of.setdefault(s.request_id, []).append(s.message_id)
            if s.expect == EXPECT_REQUEST:
                valid[s.request_id] = with_request[s.request_id] = s
        elif s.request_id and s.expect == EXPECT_DEAD_LETTER:
            with_request[s.request_id] = s

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
            accounts = ev.features.get(pair[0], 0)
            if sl is None:
                note("slice_missing", f"{rid}: no rows for {pair}")
            elif len(sl.batch_ids) != 1 or not sl.batch_ids <= later:
                note("slice_wrong", f"{rid}: {pair} holds {sorted(sl.batch_ids)}, scored by {batch_id}")
            elif sl.rows != sl.accounts:
                note("slice_doubled_rows", f"{rid}: {pair} {sl.rows} rows for {sl.accounts} accounts")
            elif not PairCheck(pair[0], pair[1], accounts, sl.rows, sl.accounts).exact:
                note("slice_off_features", f"{rid}: {pair} scores {sl.accounts} accounts, the features table "
                                           f"holds {accounts} of {pair[0]}")
            else:
                outcome["scored_exactly_once"] += 1
    superseded_ok = _supersession(superseded, with_request, valid, lambda rid: len(scored_in.get(rid, ())) == 1)

    def dead_lettered(rid: str) -> bool | None:
        """None: not in the DLQ; True: with a documented reason (a plan's also in its ``refused``)."""
        entries = [dlq_sources[m] for m in (*messages_of[rid], f"request:{rid}") if m in dlq_sources]
        if not entries:
            return None
        for d in entries:
            why = documented_reason(d.reasons)
            if why is not None and (why.stage != PLAN or refusals.get(rid, "").strip() == d.reasons):
                return True
        return False

    for rid in valid:
        if rid in scored_in:
            continue
        if superseded_ok(rid):
            outcome["superseded_with_record"] += 1
        elif dlq := dead_lettered(rid):
            outcome["valid_dead_lettered_with_reason"] += 1
        elif dlq is False:
            note("valid_dead_lettered_undocumented", f"{rid}: in the DLQ with no reason the pipeline documents")
        else:
            where = ("still in the queue" if rid in in_queue
                     else f"'{superseded[rid]}' is no record (another pair, older, or never scored)"
                     if rid in superseded
                     else "collected, never in a succeeded batch" if any(m in sources for m in messages_of[rid])
                     else "in no record")
            note("lost", f"{rid}: {where}")

    unaccounted = 0
    hostile = Counter[str]()
    for s in ev.sent:
        recorded = s.message_id in sources or s.message_id in dup_messages or s.message_id in dlq_sources
        settled = s.message_id in dlq_sources
        if s.expect == EXPECT_DEAD_LETTER:
            d = dlq_sources.get(s.message_id)
            hostile["with_reason" if d is not None and d.reasons else "missing"] += 1
            if s.request_id and s.request_id in refusals:
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
        "lost": (outcome["lost"] + outcome["slice_missing"] + outcome["slice_wrong"] + outcome["slice_off_features"]
                 + outcome["valid_dead_lettered_undocumented"]),
        "scored_twice": outcome["scored_twice"] + outcome["slice_doubled_rows"],
        "superseded_with_record": outcome["superseded_with_record"],
        "dead_lettered_with_reason": dlq_with,
        "dead_lettered_without_reason": len(ev.dlq) - dlq_with,
        "kills": ev.kills,
        "failed_windows": sum(1 for state in ev.run_states.values() if state == "failed"),
        "valid_dead_lettered_with_reason": outcome["valid_dead_lettered_with_reason"],
        "valid_dead_lettered_undocumented": outcome["valid_dead_lettered_undocumented"],
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
        "slices_off_features": outcome["slice_off_features"],
        "succeeded_batches": len(succeeded),
        "left_in_queue": len(ev.queue_left),
        "sqs_faults": ev.faults,
    }
    return SoakReport(figures, {k: v for k, v in examples.items() if v})
