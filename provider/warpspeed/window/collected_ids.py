"""The durable record of collected request ids that makes intake exactly once across windows.

SQS standard queues deliver at least once, and producers re-send. Within a window the intake
manifest is unique by request id; across windows this record is what a collect consults. Layout
under the storage prefix, one small document per window::

    intake/collected/<window_id>.json   -> the request ids that window's intake manifest owns

Rules (each one is relied on by :meth:`warpspeed.intake.service.IntakeService.collect_window`
and proven by ``tests/integration/test_sqs_intake_exactly_once.py``):

* **Written before any delete.** A collect writes its window's record (``sealed: false``) after
  its intake manifest and before it deletes a single message, then rewrites it ``sealed: true``
  once every delete is done. A message deleted from the queue is therefore always in the record.
* **Idempotent on retry.** A window rewrites only its own document, with the ids of its own
  manifest; a retry re-recording its ids is not a duplicate of anything.
* **Owned ids.** An id in a *sealed* record of another window is a duplicate: the collect
  deletes the message and records it in its manifest as a duplicate; it is not scored again.
  An id in an *unsealed* record of another window belongs to a window whose collect never
  finished (so it never planned or scored): the later window adopts it. Should the unfinished
  window ever be rerun, it finds the id owned by a sealed window and drops it as a duplicate.
* **Retention.** A record is kept for the queue's message retention period plus one day
  (``MessageRetentionPeriod``, at most 14 days on SQS) after it was last written: no copy of
  a message can be delivered later than that. Older records are pruned by each collect.
* **Cost.** One GET per retained window per collect (run in parallel) and one or two PUTs of
  the window's own ids: a few thousand ids per window cost a few kilobytes.

A genuinely newer request for the same (tenant, model) carries a new request id, so it is not a
duplicate: it is collected and scored (the planner keeps only the newest request per pair in a
window, recording the others as superseded).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from warpspeed.exceptions import ManifestError
from warpspeed.storage.documents import Storage, join_uri
from warpspeed.window.manifests import load_document

COLLECTED_SCHEMA = "warpspeed.window.collected_ids/v1"
#: SQS's default ``MessageRetentionPeriod`` (4 days), used when the queue does not say.
DEFAULT_RETENTION = timedelta(days=4)
#: Extra time a record outlives the queue's retention (clock skew, a late last window).
RETENTION_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class CollectedRecord:
    """The request ids one window's intake manifest owns."""

    window_id: str
    recorded_at: datetime
    sealed: bool
    request_ids: frozenset[str]

    def to_json(self) -> str:
        """Serialise deterministically."""
        return json.dumps(
            {"schema": COLLECTED_SCHEMA, "window_id": self.window_id,
             "recorded_at": self.recorded_at.astimezone(UTC).isoformat(), "sealed": self.sealed,
             "request_ids": sorted(self.request_ids)},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> CollectedRecord:
        """Parse a record written by :meth:`to_json`."""
        doc = load_document(text, COLLECTED_SCHEMA, source)
        try:
            return cls(doc["window_id"], datetime.fromisoformat(doc["recorded_at"]), bool(doc["sealed"]),
                       frozenset(doc["request_ids"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"{source or 'collected ids record'}: malformed: {err}") from err


@dataclass(frozen=True)
class Owner:
    """Which other window's record holds a request id."""

    window_id: str
    sealed: bool


class CollectedIds:
    """Read and write the collected-id records under a storage prefix.

    :param storage: where the records live (the same storage as the manifests).
    :param storage_prefix: the Warp Speed storage prefix.
    :param retention: how long a record is kept after it was written (queue retention + margin).
    """

    def __init__(self, storage: Storage, storage_prefix: str, retention: timedelta = DEFAULT_RETENTION) -> None:
        self.storage = storage
        self.root = join_uri(storage_prefix, "intake", "collected")
        self.retention = retention + RETENTION_MARGIN

    def uri(self, window_id: str) -> str:
        """Return the URI of one window's record."""
        return join_uri(self.root, f"{window_id}.json")

    def records(self) -> list[CollectedRecord]:
        """Read every retained record (in parallel: one GET each)."""
        uris = [u for u in self.storage.list(self.root) if u.endswith(".json")]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="collected-ids") as pool:
            return list(pool.map(lambda u: CollectedRecord.from_json(self.storage.read_text(u), u), uris))

    def owners(self, window_id: str, records: Iterable[CollectedRecord] | None = None,
               now: datetime | None = None) -> dict[str, Owner]:
        """Return request id -> the other window that recorded it (a sealed owner wins).

        Records older than the retention are ignored (no copy of their messages can be
        delivered any more), whether or not they were pruned yet.
        """
        cutoff = (now or datetime.now(UTC)) - self.retention
        out: dict[str, Owner] = {}
        for record in records if records is not None else self.records():
            if record.window_id == window_id or record.recorded_at < cutoff:
                continue
            for request_id in record.request_ids:
                current = out.get(request_id)
                if current is None or (record.sealed and not current.sealed):
                    out[request_id] = Owner(record.window_id, record.sealed)
        return out

    def record(self, window_id: str, request_ids: Iterable[str], *, sealed: bool,
               now: datetime | None = None) -> None:
        """Write (replace) this window's record; idempotent for the same ids."""
        record = CollectedRecord(window_id, now or datetime.now(UTC), sealed, frozenset(request_ids))
        self.storage.write_text(self.uri(window_id), record.to_json())

    def prune(self, records: Iterable[CollectedRecord], now: datetime | None = None) -> list[str]:
        """Delete records older than the retention; return their window ids."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        old = [r.window_id for r in records if r.recorded_at < cutoff]
        for window_id in old:
            self.storage.delete(self.uri(window_id))
        return old


def owned_elsewhere(request_ids: Iterable[str], owners: Mapping[str, Owner]) -> dict[str, str]:
    """Return request id -> window id for the ids a *sealed* other window owns (duplicates)."""
    return {r: owners[r].window_id for r in request_ids if r in owners and owners[r].sealed}
