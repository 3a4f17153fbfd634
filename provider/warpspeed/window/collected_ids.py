"""The collected-id records: which request ids each window's intake manifest owns.

One small document per window under the storage prefix::

    intake/collected/<window_id>.json   -> {window_id, recorded_at, sealed, request_ids}

``sealed`` is false while the window's collect is still deleting its messages and true once
every delete is done. A record is kept for the queue's message retention period
(``MessageRetentionPeriod``, at most 14 days on SQS) plus one day after it was last written: no
copy of a message can be delivered later than that. What a collect does with another window's
ids (duplicate or adopt) is :mod:`warpspeed.intake.rules`; when it writes its own record is
:mod:`warpspeed.intake.service`.

Cost: one GET per retained window per collect (run in parallel) and one or two PUTs of the
window's own ids: a few thousand ids per window cost a few kilobytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
        """Read every record, pruned or not yet (in parallel: one GET each)."""
        uris = [u for u in self.storage.list(self.root) if u.endswith(".json")]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="collected-ids") as pool:
            return list(pool.map(lambda u: CollectedRecord.from_json(self.storage.read_text(u), u), uris))

    def retained(self, records: Iterable[CollectedRecord], now: datetime | None = None) -> list[CollectedRecord]:
        """Return the records within the retention: no copy of the others' messages can come back."""
        cutoff = self._cutoff(now)
        return [r for r in records if r.recorded_at >= cutoff]

    def record(self, window_id: str, request_ids: Iterable[str], *, sealed: bool,
               now: datetime | None = None) -> None:
        """Write (replace) this window's record; idempotent for the same ids."""
        record = CollectedRecord(window_id, now or datetime.now(UTC), sealed, frozenset(request_ids))
        self.storage.write_text(self.uri(window_id), record.to_json())

    def prune(self, records: Iterable[CollectedRecord], now: datetime | None = None) -> list[str]:
        """Delete records older than the retention; return their window ids."""
        cutoff = self._cutoff(now)
        old = [r.window_id for r in records if r.recorded_at < cutoff]
        for window_id in old:
            self.storage.delete(self.uri(window_id))
        return old

    def _cutoff(self, now: datetime | None) -> datetime:
        return (now or datetime.now(UTC)) - self.retention
