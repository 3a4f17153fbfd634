"""Pure rules of the intake protocol: validate, sort against other windows' ids, pack dead letters.

Each received message is a new request, a duplicate (with the reason) or refused (with every
reason); refused messages are packed into dead-letter batches that SQS accepts.

Ids other windows collected (their :mod:`~warpspeed.window.collected_ids` records): an id a
*sealed* record holds is a duplicate of that window, not scored again; an id an *unsealed*
record holds belongs to a window whose collect never finished (so it never planned or scored),
and this window adopts it. Should the unfinished window ever be rerun, it finds the id owned by
a sealed window and drops it as a duplicate. A genuinely newer request for the same (tenant,
model) carries a new request id, so it is no duplicate.

No I/O here: :mod:`warpspeed.intake.service` runs the protocol around these functions, through
the thin :class:`~warpspeed.hooks.sqs.SqsIntakeHook`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warpspeed.intake.schema import ScoringRequest, validate_message
from warpspeed.window.collected_ids import CollectedRecord
from warpspeed.window.manifests import DuplicateMessage, IntakeManifest, RejectedMessage

SQS_BATCH = 10
#: SQS limit of one message and of one SendMessageBatch call: body plus attributes.
SQS_MAX_PAYLOAD = 256 * 1024
#: Bytes kept free in every DLQ message for the truncation attribute.
_TRUNCATION_ROOM = 200
REASONS_ATTRIBUTE = "warpspeed_reasons"
TRUNCATED_ATTRIBUTE = "warpspeed_body_truncated"
REPLACED_ATTRIBUTE = "warpspeed_body_replaced"
MAX_REASONS_CHARS = 4000
BODY_EXCERPT_CHARS = 200


@dataclass
class HeldMessage:
    """A received message a collect still holds (not yet deleted)."""

    message_id: str
    receipt_handle: str
    body: str
    request: ScoringRequest | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Owner:
    """Which other window's record holds a request id."""

    window_id: str
    sealed: bool


def owners_of(records: Iterable[CollectedRecord], window_id: str) -> dict[str, Owner]:
    """Return request id -> the other window whose record holds it (a sealed owner wins).

    :param records: the retained records (:meth:`~warpspeed.window.collected_ids.CollectedIds.retained`).
    """
    out: dict[str, Owner] = {}
    for record in records:
        if record.window_id == window_id:
            continue
        for request_id in record.request_ids:
            current = out.get(request_id)
            if current is None or (record.sealed and not current.sealed):
                out[request_id] = Owner(record.window_id, record.sealed)
    return out


def _collected_by(message_id: str, request_id: str, owner: Owner) -> DuplicateMessage:
    return DuplicateMessage(message_id, request_id, owner.window_id,
                            f"request id already collected by window {owner.window_id}")


def drop_owned(earlier: IntakeManifest, owners: Mapping[str, Owner]) -> IntakeManifest:
    """Return an earlier attempt's manifest with the ids a sealed other window took moved to duplicates.

    A rerun of a window whose collect never finished: ids a later window took stay there.
    """
    return earlier.moved_to_duplicates(
        _collected_by(earlier.sources.get(r.request_id, f"request:{r.request_id}"), r.request_id, owner)
        for r in earlier.requests
        if (owner := owners.get(r.request_id)) is not None and owner.sealed
    )


@dataclass
class Sorted:
    """What a collect does with each held message."""

    requests: list[ScoringRequest] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    rejected: list[HeldMessage] = field(default_factory=list)
    duplicates: list[DuplicateMessage] = field(default_factory=list)
    already_in_manifest: int = 0
    adopted: dict[str, str] = field(default_factory=dict)


def sort_held(
    held: Iterable[HeldMessage], earlier: IntakeManifest, owners: Mapping[str, Owner]
) -> Sorted:
    """Sort held messages into new requests, duplicates (with reasons) and refused messages.

    * A request id already in this window's manifest from the same message is *already in the
      manifest* (a retry received it again); from another message it is a duplicate.
    * A second message with the same request id in this receive is a duplicate of the first.
    * A request id a sealed record of another window owns is a duplicate of that window; one
      an unsealed record holds is adopted (that window's collect never finished).
    """
    out = Sorted()
    known = {r.request_id: earlier.sources.get(r.request_id) for r in earlier.requests}
    for h in sorted(held, key=lambda m: m.message_id):
        if h.request is None:
            out.rejected.append(h)
            continue
        rid = h.request.request_id
        if rid in known:
            first = known[rid]
            if first in (None, h.message_id):
                out.already_in_manifest += 1
            else:
                out.duplicates.append(DuplicateMessage(
                    h.message_id, rid, earlier.window_id, f"request id already in this window (message {first})"))
            continue
        if rid in out.sources:
            out.duplicates.append(DuplicateMessage(
                h.message_id, rid, earlier.window_id,
                f"request id already in this window (message {out.sources[rid]})"))
            continue
        owner = owners.get(rid)
        if owner is not None and owner.sealed:
            out.duplicates.append(_collected_by(h.message_id, rid, owner))
            continue
        if owner is not None:
            out.adopted[rid] = owner.window_id
        out.requests.append(h.request)
        out.sources[rid] = h.message_id
    return out


def check_message(message: Mapping[str, Any], models: Mapping[str, frozenset[str]], max_receives: int) -> HeldMessage:
    """Validate one received message; whatever goes wrong becomes a reason, never an exception."""
    body = str(message.get("Body", ""))
    held = HeldMessage(message_id=message["MessageId"], receipt_handle=message["ReceiptHandle"], body=body)
    try:
        attributes = message.get("Attributes", {})
        result = validate_message(
            body, allowed_models=models, receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            max_receives=max_receives,
        )
        why = manifest_safe(result.request) if result.request is not None else None
    except Exception as err:  # a poison message must never stop its neighbours
        held.reasons = (f"could not be validated: {type(err).__name__}: {str(err)[:200]}",)
        return held
    if why is not None:
        held.reasons = (why,)
    else:
        held.request, held.reasons = result.request, result.reasons
    return held


def rejected_records(rejected: Iterable[HeldMessage]) -> list[RejectedMessage]:
    """Return the manifest records of refused messages (bounded body excerpts)."""
    return [RejectedMessage(h.message_id, h.reasons, h.body[:BODY_EXCERPT_CHARS]) for h in rejected]


def carried_receipts(earlier: IntakeManifest, received_now: Iterable[str]) -> dict[str, str]:
    """Return the earlier attempt's receipts this attempt must delete (message id -> handle).

    Not those of messages received again (their new receipt is held), and not those of refused
    messages the DLQ never got: deleting them would lose them. They reappear after the
    visibility timeout and are refused, with their reasons, by whichever collect receives them.
    """
    skip = {r.message_id for r in earlier.rejected if not r.dead_lettered} | set(received_now)
    return {m: r for m, r in earlier.pending_receipts.items() if m not in skip}


def _attributes(h: HeldMessage, window_id: str) -> dict[str, dict[str, str]]:
    reasons = " | ".join(h.reasons)[:MAX_REASONS_CHARS] or "refused at intake"
    return {
        REASONS_ATTRIBUTE: {"DataType": "String", "StringValue": reasons},
        "warpspeed_source_message_id": {"DataType": "String", "StringValue": h.message_id},
        "warpspeed_window_id": {"DataType": "String", "StringValue": window_id},
    }


def payload_size(entry: Mapping[str, Any]) -> int:
    """Return the bytes SQS counts for one message: body plus attribute names, types and values."""
    size = len(str(entry["MessageBody"]).encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode("utf-8"))
    return size


def dead_letter_entry(h: HeldMessage, entry_id: str, window_id: str) -> dict[str, Any]:
    """Return one SendMessageBatch entry; a body too large for SQS is truncated, with the reason."""
    attributes = _attributes(h, window_id)
    body = h.body if h.body else "<empty body>"
    entry = {"Id": entry_id, "MessageBody": body, "MessageAttributes": attributes}
    size = payload_size(entry)
    if size <= SQS_MAX_PAYLOAD:
        return entry
    raw = body.encode("utf-8")
    keep = max(SQS_MAX_PAYLOAD - (size - len(raw)) - _TRUNCATION_ROOM, 0)
    attributes[TRUNCATED_ATTRIBUTE] = {
        "DataType": "String",
        "StringValue": f"body truncated for the dead-letter queue: {len(raw)} bytes, first {keep} kept",
    }
    entry["MessageBody"] = raw[:keep].decode("utf-8", errors="ignore") or "<truncated>"
    return entry


def replaced_body(entry: Mapping[str, Any], failure: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``entry`` with its body replaced by an ASCII JSON reference the DLQ will accept."""
    if REPLACED_ATTRIBUTE in entry.get("MessageAttributes", {}):
        return dict(entry)  # already replaced once: keep retrying as is
    body = str(entry["MessageBody"])
    reference = json.dumps({"warpspeed_body_replaced": True, "bytes": len(body.encode("utf-8")),
                            "excerpt": body[:BODY_EXCERPT_CHARS]}, ensure_ascii=True)
    why = f"{failure.get('Code')}: {failure.get('Message')}"[:MAX_REASONS_CHARS]
    attributes = dict(entry.get("MessageAttributes", {}))
    attributes[REPLACED_ATTRIBUTE] = {"DataType": "String", "StringValue": why.encode("ascii", "replace").decode()}
    return {**entry, "MessageBody": reference, "MessageAttributes": attributes}


def dead_letter_batches(held: Sequence[HeldMessage], window_id: str) -> list[list[dict[str, Any]]]:
    """Pack DLQ entries into batches of at most 10 entries and 256 KiB in total."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    current_size = 0
    for h in held:
        entry = dead_letter_entry(h, str(len(current)), window_id)
        size = payload_size(entry)
        if current and (len(current) == SQS_BATCH or current_size + size > SQS_MAX_PAYLOAD):
            batches.append(current)
            current, current_size = [], 0
            entry["Id"] = "0"
        current.append(entry)
        current_size += size
    if current:
        batches.append(current)
    return batches


def manifest_safe(request: ScoringRequest) -> str | None:
    """Return why ``request`` cannot be written to a manifest, or None when it can."""
    try:
        json.dumps(request.to_dict(), indent=1, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as err:
        return f"cannot be written to the intake manifest: {type(err).__name__}: {str(err)[:200]}"
    return None

