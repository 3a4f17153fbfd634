"""Collect a window's requests from SQS into an intake manifest, exactly once per request id.

:meth:`IntakeService.collect_window` runs the protocol below top to bottom, through the thin
SQS calls of :class:`~warpspeed.hooks.sqs.SqsIntakeHook`, the pure rules of
:mod:`warpspeed.intake.rules`, the visibility heartbeat of :mod:`warpspeed.intake.heartbeat`
and two documents: the window's intake manifest (:mod:`warpspeed.window.manifests`) and the
collected-id records of every window (:mod:`warpspeed.window.collected_ids`).

The protocol, in order, so that no crash loses or doubles a request:

0. Check the queue: the app's poison limit must be below its redrive ``maxReceiveCount`` (so
   every dead-lettered message carries reasons); read its retention for the id records.
1. Read the window's existing intake manifest, if an earlier attempt wrote one, and the
   collected-id records of other windows; ids a sealed other window took since leave the
   earlier manifest as duplicates.
2. Receive with long polling from a few parallel receivers, holding each message invisible
   for a timeout that covers the work (a heartbeat extends it; if it cannot, the collect fails
   before deleting anything); validate each. A message that cannot be processed for any reason
   is refused with that reason; it never stops its neighbours.
3. Sort (:func:`~warpspeed.intake.rules.sort_held`): new requests, duplicates (same id twice
   in the window, or an id another window owns) with their reasons, refused messages.
4. Write the merged manifest atomically, with the receipt handles still to delete (this
   attempt's and any an earlier attempt left).
5. Record the window's request ids, unsealed: written before any delete, so a message deleted
   from the queue is always in a record. A retry rewrites only its own record, with its own ids.
6. Send refused messages to the dead-letter queue with their reasons (batches within the SQS
   count and size limits), then mark them in the manifest as dead-lettered.
7. Only now delete: the earlier attempt's receipts (tolerantly: they may be stale), then every
   held message, duplicates included, in batches of ten, retrying partial failures.
8. Clear the pending receipts in the manifest and seal the window's id record; prune old records.

Each step's crash case and every guarantee, with the test that proves it: docs/intake.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warpspeed.exceptions import WarpSpeedError
from warpspeed.intake.heartbeat import kept_hidden
from warpspeed.intake.rules import (
    HeldMessage,
    carried_receipts,
    check_message,
    drop_owned,
    owners_of,
    rejected_records,
    sort_held,
)
from warpspeed.intake.schema import DEFAULT_MAX_RECEIVES
from warpspeed.storage.documents import Storage
from warpspeed.window.collected_ids import CollectedIds
from warpspeed.window.manifests import IntakeManifest

if TYPE_CHECKING:
    from warpspeed.hooks.sqs import SqsIntakeHook

__all__ = ["IntakeOptions", "IntakeReport", "IntakeService"]


@dataclass(frozen=True)
class IntakeOptions:
    """How a collection drains the queue.

    :param max_messages: most messages taken in one window; the rest waits for the next.
    :param receivers: parallel receive loops.
    :param wait_seconds: long-poll wait of each receive (0-20).
    :param empty_receives: consecutive empty receives per receiver that end the drain.
    :param visibility_timeout: seconds a received message stays hidden; extended at half-time.
    :param max_receives: receive count at which a message is a poison message (to the DLQ with
        that reason); must be below the queue's redrive ``maxReceiveCount``.
    :param drain_rounds: receive rounds at most while the queue still reports visible messages.
    """

    max_messages: int = 20_000
    receivers: int = 4
    wait_seconds: int = 1
    empty_receives: int = 2
    visibility_timeout: int = 600
    max_receives: int = DEFAULT_MAX_RECEIVES
    drain_rounds: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.wait_seconds <= 20:
            raise WarpSpeedError("wait_seconds must be between 0 and 20 (SQS long polling)")
        if not 1 <= self.receivers <= 32:
            raise WarpSpeedError("receivers must be between 1 and 32")
        if not 1 <= self.visibility_timeout <= 43_200:
            raise WarpSpeedError("visibility_timeout must be between 1 s and 12 h (SQS limits)")


@dataclass
class IntakeReport:
    """What one collection did; logged and returned to the operator."""

    manifest_uri: str
    received: int = 0
    valid: int = 0
    invalid: int = 0
    already_in_manifest: int = 0
    duplicates: int = 0
    adopted: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    requests_in_manifest: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Return messages received per second."""
        return self.received / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Drain:
    held: dict[str, HeldMessage] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: int = 0

    def snapshot(self) -> list[HeldMessage]:
        with self.lock:
            return list(self.held.values())


class IntakeService:
    """Drain the request queue into intake manifests through one :class:`SqsIntakeHook`."""

    def __init__(self, hook: SqsIntakeHook) -> None:
        self.hook = hook

    @property
    def log(self) -> Any:
        """Return the hook's logger (task logs show the collect's progress)."""
        return self.hook.log

    def collect_window(
        self,
        *,
        queue_url: str,
        dlq_url: str,
        window_id: str,
        manifest_uri: str,
        storage: Storage,
        allowed_models: Mapping[str, Iterable[str]],
        options: IntakeOptions | None = None,
        fault: Callable[[str], None] | None = None,
        storage_prefix: str | None = None,
    ) -> IntakeReport:
        """Drain the queue into the window's intake manifest; see the module doc for the order.

        :param storage_prefix: where the collected-id records live (cross-window exactly once);
            None keeps the dedupe within this window's manifest only.
        :param fault: test hook called with a step name (``received``, ``manifest_written``,
            ``ids_recorded``, ``dead_lettered``, ``dead_letters_recorded``, ``deleting``,
            ``deleted``) so crash tests can stop the protocol anywhere.
        """
        options = options or IntakeOptions()
        checkpoint = fault or (lambda _step: None)
        models = {w: frozenset(m) for w, m in allowed_models.items()}
        started = time.monotonic()
        report = IntakeReport(manifest_uri=manifest_uri)
        # 0. the queue's poison limit and retention
        retention = self.hook.queue_limits(queue_url, options.max_receives)
        # 1. the earlier attempt's manifest, less the ids a sealed other window took since
        ids = CollectedIds(storage, storage_prefix, retention) if storage_prefix else None
        records = ids.records() if ids else []
        owners = owners_of(ids.retained(records), window_id) if ids else {}
        earlier = drop_owned(
            IntakeManifest.from_json(storage.read_text(manifest_uri))
            if storage.exists(manifest_uri)
            else IntakeManifest(window_id=window_id),
            owners,
        )
        drain = _Drain()
        with kept_hidden(self.hook, queue_url, drain.snapshot, options.visibility_timeout) as beat:
            # 2. receive and validate, holding every message hidden
            self._drain(queue_url, options, models, started, drain)
            checkpoint("received")
            beat.check()
            held = drain.snapshot()
            # 3. sort into new requests, duplicates and refused messages
            sorted_ = sort_held(held, earlier, owners)
            report.received = drain.received
            report.valid = sum(1 for h in held if h.request is not None)
            report.invalid = len(sorted_.rejected)
            report.already_in_manifest = sorted_.already_in_manifest
            report.duplicates = len(sorted_.duplicates)
            report.adopted = len(sorted_.adopted)
            for rid, other in sorted_.adopted.items():
                self.log.warning("request %s adopted from window %s, whose collect never finished", rid, other)
            # 4. the merged manifest, with every receipt still to delete
            carried = carried_receipts(earlier, (h.message_id for h in held))
            manifest = earlier.merged(
                sorted_.requests, rejected_records(sorted_.rejected), sorted_.duplicates, sorted_.sources
            ).with_pending_receipts(carried | {h.message_id: h.receipt_handle for h in held})
            storage.write_text(manifest_uri, manifest.to_json())
            report.requests_in_manifest = len(manifest.requests)
            checkpoint("manifest_written")
            # 5. this window's ids, unsealed, before any delete
            request_ids = [r.request_id for r in manifest.requests]
            if ids:
                ids.record(window_id, request_ids, sealed=False)
            checkpoint("ids_recorded")
            # 6. refused messages to the dead-letter queue, then marked as sent
            already_sent = manifest.dead_lettered_ids()
            to_send = [h for h in sorted_.rejected if h.message_id not in already_sent]
            if to_send:
                report.dead_lettered = self.hook.send_to_dead_letter(dlq_url, to_send, window_id)
                checkpoint("dead_lettered")
                manifest = manifest.with_dead_lettered(h.message_id for h in to_send)
                storage.write_text(manifest_uri, manifest.to_json())
            checkpoint("dead_letters_recorded")
            beat.check()
            # 7. only now delete: the earlier attempt's receipts, then every held message
            if carried:
                report.deleted = self.hook.delete(queue_url, list(carried.values()), strict=False)
            receipts = [h.receipt_handle for h in held]
            half = len(receipts) // 2
            report.deleted += self.hook.delete(queue_url, receipts[:half])
            checkpoint("deleting")
            report.deleted += self.hook.delete(queue_url, receipts[half:])
        checkpoint("deleted")
        # 8. nothing left to delete: clear the receipts, seal the ids, prune old records
        storage.write_text(manifest_uri, manifest.with_pending_receipts({}).to_json())
        if ids:
            ids.record(window_id, request_ids, sealed=True)
            pruned = ids.prune(records)
            if pruned:
                self.log.info("pruned %d collected-id records older than %s", len(pruned), ids.retention)
        report.seconds = time.monotonic() - started
        self.log.info(
            "Window %s: received %d, valid %d (%d already in manifest, %d duplicates), invalid %d -> DLQ %d, "
            "deleted %d, %d requests in manifest, %.1f msg/s",
            window_id, report.received, report.valid, report.already_in_manifest, report.duplicates,
            report.invalid, report.dead_lettered, report.deleted, report.requests_in_manifest, report.rate,
        )
        return report

    def _drain(
        self,
        queue_url: str,
        options: IntakeOptions,
        models: Mapping[str, frozenset[str]],
        started: float,
        drain: _Drain,
    ) -> None:
        """Receive and validate (step 2) until the queue reports itself empty or the window is full."""
        last_log = [started]

        def room() -> bool:
            with drain.lock:
                return len(drain.held) < options.max_messages

        def receiver() -> None:
            empty = 0
            while empty < options.empty_receives and room():
                messages = self.hook.receive(queue_url, options.wait_seconds, options.visibility_timeout)
                if not messages:
                    empty += 1
                    continue
                empty = 0
                checked = [check_message(m, models, options.max_receives) for m in messages]
                with drain.lock:
                    drain.received += len(messages)
                    for h in checked:
                        # A duplicate delivery of a message we hold: keep the newest receipt.
                        drain.held[h.message_id] = h
                    now = time.monotonic()
                    if now - last_log[0] >= 5:
                        last_log[0] = now
                        self.log.info(
                            "received %d messages so far (%.0f msg/s)", drain.received,
                            drain.received / max(now - started, 1e-6),
                        )

        # Empty receives do not prove an empty queue (a short poll samples only some SQS
        # servers), so a round ends only when the queue itself reports no visible messages.
        for _round in range(options.drain_rounds):
            with ThreadPoolExecutor(max_workers=options.receivers, thread_name_prefix="sqs-receive") as pool:
                for future in [pool.submit(receiver) for _ in range(options.receivers)]:
                    future.result()
            if not room() or self.hook.approximate_depth(queue_url) == 0:
                break

