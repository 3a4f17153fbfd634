"""Carry-over between windows: the pending documents and the head that chains them.

When a window has more work than its workloads' ``max_batches_per_window``, the plan task
carries the rest over. Each plan writes one immutable *pending document* under its window and
then moves a small *head* document to it; the next plan reads the head, merges those requests
into its own, and so on. Layout under the storage prefix::

    pending/head.json                  -> which pending document the next plan consumes
    windows/<window_id>/pending.json   -> what that window's plan left pending, and its input

Why this is safe to retry and never loses or doubles a request:

* A pending document records the input it was planned from (the previous pending document),
  so a retry of the same window plans from the same input and writes the same batches, even
  if the head has already moved to it.
* Writes go in order: batch manifests, pending document, plan document, head. A crash before
  the pending document is written leaves the head where it was, so the retry starts afresh
  from the same input; a crash after it is seen on retry (the pending document exists and the
  head still names its input, or already names it).
* Each pending document is consumed by at most one first plan: the head moves on as soon as
  it has been consumed, and a consumed document is never rewritten with different contents.
  Re-planning an old window whose pending document later windows already consumed is only
  allowed when it carries over exactly the same requests (the usual case: same intake); it
  then rewrites its batch manifests and leaves the chain alone. Otherwise it raises
  :class:`CarryOverConflict` rather than lose or double a request.

A carried-over request also stays in its original window's intake manifest
(``source_window_id`` says which).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from warpspeed.exceptions import ManifestError, WarpSpeedError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.planning.batches import PendingRequest
from warpspeed.storage.documents import Storage, join_uri
from warpspeed.window.manifests import load_document

PENDING_SCHEMA = "warpspeed.pending/v1"
HEAD_SCHEMA = "warpspeed.pending_head/v1"


class CarryOverConflict(WarpSpeedError):
    """Re-planning a window would change requests that later windows already planned."""


def pending_uri(storage_prefix: str, window_id: str) -> str:
    """Return the URI of the pending document a window's plan writes."""
    return join_uri(storage_prefix, "windows", window_id, "pending.json")


def head_uri(storage_prefix: str) -> str:
    """Return the URI of the head document."""
    return join_uri(storage_prefix, "pending", "head.json")


@dataclass(frozen=True)
class PendingDocument:
    """What one window's plan left pending, and which pending document it planned from.

    :param window_id: the window whose plan wrote it.
    :param input_uri: the pending document that plan consumed; None for the first in a chain.
    :param requests: the carried-over requests, by request id.
    :param reasons: request id -> why it was carried over.
    """

    window_id: str
    input_uri: str | None
    requests: tuple[PendingRequest, ...] = ()
    reasons: Mapping[str, str] | None = None

    @property
    def request_ids(self) -> frozenset[str]:
        """Return the ids of the pending requests."""
        return frozenset(p.request.request_id for p in self.requests)

    def to_json(self) -> str:
        """Serialise deterministically."""
        reasons = self.reasons or {}
        return json.dumps(
            {
                "schema": PENDING_SCHEMA,
                "window_id": self.window_id,
                "input_uri": self.input_uri,
                "requests": [
                    {
                        "request": p.request.to_dict(),
                        "source_window_id": p.source_window_id,
                        "first_window_id": p.first_window_id,
                        "carried": p.carried,
                        "reason": reasons.get(p.request.request_id, ""),
                    }
                    for p in sorted(self.requests, key=lambda p: p.request.request_id)
                ],
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, uri: str = "pending document") -> PendingDocument:
        """Parse a document written by :meth:`to_json`."""
        doc = load_document(text, PENDING_SCHEMA, uri)
        try:
            entries = [
                (
                    PendingRequest(
                        ScoringRequest.from_dict(e["request"]),
                        e["source_window_id"],
                        e["first_window_id"],
                        int(e["carried"]),
                    ),
                    str(e.get("reason", "")),
                )
                for e in doc["requests"]
            ]
            return cls(
                window_id=doc["window_id"],
                input_uri=doc.get("input_uri"),
                requests=tuple(p for p, _ in entries),
                reasons={p.request.request_id: r for p, r in entries},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"{uri}: malformed {PENDING_SCHEMA} document: {err!r}") from err


@dataclass(frozen=True)
class PendingHead:
    """Which pending document the next first plan consumes."""

    window_id: str
    pending_uri: str

    def to_json(self) -> str:
        """Serialise deterministically."""
        return json.dumps(
            {"schema": HEAD_SCHEMA, "window_id": self.window_id, "pending_uri": self.pending_uri},
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, uri: str = "pending head") -> PendingHead:
        """Parse a document written by :meth:`to_json`."""
        doc = load_document(text, HEAD_SCHEMA, uri)
        return cls(window_id=str(doc["window_id"]), pending_uri=str(doc["pending_uri"]))


@dataclass(frozen=True)
class PlanInput:
    """Where a window's plan starts from.

    :param mode: ``first`` (the window was never planned: consume the head), ``retry`` (planned
        before and nothing consumed its pending document yet), or ``replay`` (later windows
        already consumed it: the carry-over must come out the same).
    :param input_uri: the pending document to merge in, or None.
    :param pending: the requests in it.
    :param previous: this window's own pending document from an earlier attempt, if any.
    """

    mode: str
    input_uri: str | None
    pending: tuple[PendingRequest, ...]
    previous: PendingDocument | None = None


class CarryOverChain:
    """Read and advance the chain of pending documents under one storage prefix.

    :param storage: where the documents live.
    :param storage_prefix: the ``[warpspeed] storage_prefix``.
    """

    def __init__(self, storage: Storage, storage_prefix: str) -> None:
        self.storage = storage
        self.storage_prefix = storage_prefix

    @property
    def head_uri(self) -> str:
        """Return the head document's URI."""
        return head_uri(self.storage_prefix)

    def pending_uri(self, window_id: str) -> str:
        """Return the URI of a window's pending document."""
        return pending_uri(self.storage_prefix, window_id)

    def head(self) -> PendingHead | None:
        """Return the head, or None when no plan has carried anything yet."""
        if not self.storage.exists(self.head_uri):
            return None
        return PendingHead.from_json(self.storage.read_text(self.head_uri), self.head_uri)

    def read(self, uri: str | None) -> PendingDocument | None:
        """Return the pending document at ``uri`` (None for None); a missing one is an error."""
        if uri is None:
            return None
        try:
            text = self.storage.read_text(uri)
        except FileNotFoundError:
            raise ManifestError(
                f"pending document {uri} is missing: it holds carried-over requests. Restore it, "
                f"or (accepting that they are dropped) delete {self.head_uri} to start a new chain"
            ) from None
        return PendingDocument.from_json(text, uri)

    def resolve(self, window_id: str) -> PlanInput:
        """Return what a plan of ``window_id`` must merge in, retry-safely."""
        own_uri = self.pending_uri(window_id)
        previous = (
            PendingDocument.from_json(self.storage.read_text(own_uri), own_uri)
            if self.storage.exists(own_uri)
            else None
        )
        head = self.head()
        if previous is None:
            input_uri = head.pending_uri if head else None
            mode = "first"
        else:
            input_uri = previous.input_uri
            unconsumed = head is None or head.pending_uri in (own_uri, previous.input_uri)
            mode = "retry" if unconsumed else "replay"
        held = self.read(input_uri)
        return PlanInput(mode, input_uri, held.requests if held else (), previous)

    def check(self, window_id: str, plan_input: PlanInput, pending: tuple[PendingRequest, ...]) -> None:
        """Refuse a replay that would change what the window carries over.

        :raises CarryOverConflict: when later windows already consumed this window's pending
            document and the new plan carries over other requests than it holds.
        """
        if plan_input.mode != "replay" or plan_input.previous is None:
            return
        now = frozenset(p.request.request_id for p in pending)
        before = plan_input.previous.request_ids
        if now != before:
            raise CarryOverConflict(
                f"window {window_id} was planned before and later windows already took over what it "
                f"carried (head: {self.head_uri}); planning it again now would carry over "
                f"{len(now - before)} other and drop {len(before - now)} of those requests. "
                f"Re-run it only with the intake it was first planned from."
            )

    def record(
        self,
        window_id: str,
        plan_input: PlanInput,
        pending: tuple[PendingRequest, ...],
        reasons: Mapping[str, str],
    ) -> str:
        """Write the window's pending document (unless replaying); return its URI.

        :raises CarryOverConflict: see :meth:`check`.
        """
        self.check(window_id, plan_input, pending)
        uri = self.pending_uri(window_id)
        if plan_input.mode != "replay":
            doc = PendingDocument(window_id, plan_input.input_uri, pending, reasons)
            self.storage.write_text(uri, doc.to_json())
        return uri

    def advance(self, window_id: str, plan_input: PlanInput) -> bool:
        """Move the head to the window's pending document; return whether it moved.

        Call after :meth:`record` and after the plan document is written. Does nothing when
        replaying or when the head already names this window.
        """
        if plan_input.mode == "replay":
            return False
        uri = self.pending_uri(window_id)
        head = self.head()
        if head is not None and head.pending_uri == uri:
            return False
        self.storage.write_text(self.head_uri, PendingHead(window_id, uri).to_json())
        return True
