"""Pure rules of the intake protocol: sort received messages, pack dead-letter batches.

Each received message is a new request, a duplicate (with the reason) or refused (with every
reason); refused messages are packed into dead-letter batches that SQS accepts.

No I/O here; :mod:`warpspeed.hooks.sqs` runs the protocol around these functions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warpspeed.exceptions import WarpSpeedError
from warpspeed.intake.schema import ScoringRequest, validate_message
from warpspeed.window.collected_ids import Owner
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
            out.duplicates.append(DuplicateMessage(
                h.message_id, rid, owner.window_id, f"request id already collected by window {owner.window_id}"))
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


class Heartbeat:
    """The visibility heartbeat's stop flag and the error that stopped it, if any."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def check(self) -> None:
        """Raise if the heartbeat could not keep the held messages hidden."""
        if self.error is not None:
            raise WarpSpeedError(
                f"could not extend the visibility of held messages ({self.error!r}); nothing was "
                "deleted after that, a retry collects them again"
            ) from self.error
