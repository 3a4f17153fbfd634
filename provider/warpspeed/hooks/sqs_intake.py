"""SQS intake: drain a window's requests losslessly into an intake manifest.

The protocol, in order, so that no crash loses or doubles a request:

1. Read the window's existing intake manifest, if an earlier attempt wrote one.
2. Receive with long polling from a few parallel receivers, holding each message invisible
   for a timeout that covers the work (extended if collection runs long); validate each.
3. Write the merged manifest (earlier attempt + this one, unique by request id) atomically.
4. Send invalid messages to the dead-letter queue with their reasons as message attributes,
   then mark them in the manifest as dead-lettered (a retry does not send them again).
5. Only now delete, in batches of ten, retrying partial failures.

A crash before step 3 leaves every message in the queue (it reappears after the visibility
timeout). A crash after it leaves messages that the next attempt receives again and merges
away by request id. Invalid messages are deleted only after the DLQ accepted them and the
manifest recorded that; only a crash between the DLQ send and that record can send one twice
to the DLQ, and none can lose it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from warpspeed.exceptions import WarpSpeedError
from warpspeed.manifests import IntakeManifest, RejectedMessage
from warpspeed.request_schema import DEFAULT_MAX_RECEIVES, ScoringRequest, validate_message
from warpspeed.storage import Storage

SQS_BATCH = 10
REASONS_ATTRIBUTE = "warpspeed_reasons"


@dataclass(frozen=True)
class IntakeOptions:
    """How a collection drains the queue.

    :param max_messages: most messages taken in one window; the rest waits for the next.
    :param receivers: parallel receive loops.
    :param wait_seconds: long-poll wait of each receive (0-20).
    :param empty_receives: consecutive empty receives per receiver that end the drain.
    :param visibility_timeout: seconds a received message stays hidden; extended at half-time.
    :param max_receives: receives after which a message is a poison message (to the DLQ).
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
    dead_lettered: int = 0
    deleted: int = 0
    requests_in_manifest: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Return messages received per second."""
        return self.received / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Held:
    """A received message this attempt still holds (not yet deleted)."""

    message_id: str
    receipt_handle: str
    body: str
    request: ScoringRequest | None = None
    reasons: tuple[str, ...] = ()


@dataclass
class _Drain:
    held: dict[str, _Held] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: int = 0


class SqsIntakeHook(AwsBaseHook):
    """Interact with the scoring request queue and its dead-letter queue.

    :param aws_conn_id: Airflow AWS connection (its ``endpoint_url`` extra points the same
        code at an SQS-compatible server).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sqs"
        super().__init__(*args, **kwargs)

    @property
    def sqs(self) -> Any:
        """Return the boto3 SQS client (built once by the base hook from the connection)."""
        return self.conn

    # -- small queue operations -------------------------------------------------------------
    def approximate_depth(self, queue_url: str) -> int:
        """Return the queue's approximate number of visible messages."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0))

    def receive(self, queue_url: str, options: IntakeOptions) -> list[dict[str, Any]]:
        """Receive up to ten messages with their receive counts."""
        resp = self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            WaitTimeSeconds=options.wait_seconds,
            VisibilityTimeout=options.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        return list(resp.get("Messages", []))

    def delete(self, queue_url: str, held: Sequence[_Held], attempts: int = 4) -> int:
        """Delete messages in batches of ten, retrying entries that failed; return the count."""
        deleted = 0
        for chunk in _chunks(held, SQS_BATCH):
            pending = {str(i): h for i, h in enumerate(chunk)}
            for attempt in range(attempts):
                resp = self.sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": i, "ReceiptHandle": h.receipt_handle} for i, h in pending.items()],
                )
                for ok in resp.get("Successful", []):
                    pending.pop(ok["Id"], None)
                    deleted += 1
                if not pending:
                    break
                self.log.warning(
                    "%d of %d deletes failed (attempt %d): %s",
                    len(pending), len(chunk), attempt + 1,
                    "; ".join(f"{f.get('Code')}: {f.get('Message')}" for f in resp.get("Failed", [])),
                )
                time.sleep(min(2**attempt * 0.2, 2.0))
            if pending:
                raise WarpSpeedError(
                    f"could not delete {len(pending)} messages after {attempts} attempts; they are "
                    "in the intake manifest, so a retry of this task merges them without duplicates"
                )
        return deleted

    def send_to_dead_letter(self, dlq_url: str, held: Sequence[_Held], window_id: str) -> int:
        """Send invalid messages to the DLQ with their reasons; return how many were sent."""
        sent = 0
        for chunk in _chunks(held, SQS_BATCH):
            entries = {
                str(i): {
                    "Id": str(i),
                    "MessageBody": h.body if h.body else "<empty body>",
                    "MessageAttributes": {
                        REASONS_ATTRIBUTE: {"DataType": "String", "StringValue": " | ".join(h.reasons)[:4000]},
                        "warpspeed_source_message_id": {"DataType": "String", "StringValue": h.message_id},
                        "warpspeed_window_id": {"DataType": "String", "StringValue": window_id},
                    },
                }
                for i, h in enumerate(chunk)
            }
            for attempt in range(4):
                resp = self.sqs.send_message_batch(QueueUrl=dlq_url, Entries=list(entries.values()))
                for ok in resp.get("Successful", []):
                    entries.pop(ok["Id"], None)
                    sent += 1
                if not entries:
                    break
                time.sleep(min(2**attempt * 0.2, 2.0))
            if entries:
                raise WarpSpeedError(f"the dead-letter queue refused {len(entries)} messages; nothing deleted")
        return sent

    def extend_visibility(self, queue_url: str, held: Iterable[_Held], seconds: int) -> None:
        """Keep held messages hidden for ``seconds`` more (already deleted ones just fail)."""
        for chunk in _chunks(list(held), SQS_BATCH):
            self.sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h.receipt_handle, "VisibilityTimeout": seconds}
                    for i, h in enumerate(chunk)
                ],
            )

    # -- the collection protocol ------------------------------------------------------------
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
    ) -> IntakeReport:
        """Drain the queue into the window's intake manifest; see the module doc for the order.

        :param fault: test hook called with a step name (``received``, ``manifest_written``,
            ``dead_lettered``, ``dead_letters_recorded``, ``deleting``) so crash tests can stop
            the protocol anywhere.
        """
        options = options or IntakeOptions()
        checkpoint = fault or (lambda _step: None)
        models = {w: frozenset(m) for w, m in allowed_models.items()}
        started = time.monotonic()
        report = IntakeReport(manifest_uri=manifest_uri)

        earlier = (
            IntakeManifest.from_json(storage.read_text(manifest_uri))
            if storage.exists(manifest_uri)
            else IntakeManifest(window_id=window_id)
        )
        drain = _Drain()
        with self._kept_hidden(queue_url, drain, options):
            self._drain(queue_url, options, models, started, drain)
            checkpoint("received")
            held = list(drain.held.values())
            valid = [h for h in held if h.request is not None]
            invalid = [h for h in held if h.request is None]
            known_ids = {r.request_id for r in earlier.requests}
            report.received = drain.received
            report.valid = len(valid)
            report.invalid = len(invalid)
            report.already_in_manifest = sum(1 for h in valid if h.request and h.request.request_id in known_ids)

            manifest = earlier.merged(
                (h.request for h in valid if h.request is not None),
                (RejectedMessage(h.message_id, h.reasons, h.body[:200]) for h in invalid),
            )
            storage.write_text(manifest_uri, manifest.to_json())
            report.requests_in_manifest = len(manifest.requests)
            checkpoint("manifest_written")

            already_sent = manifest.dead_lettered_ids()
            to_send = [h for h in invalid if h.message_id not in already_sent]
            if to_send:
                report.dead_lettered = self.send_to_dead_letter(dlq_url, to_send, window_id)
                checkpoint("dead_lettered")
                manifest = manifest.with_dead_lettered(h.message_id for h in to_send)
                storage.write_text(manifest_uri, manifest.to_json())
            checkpoint("dead_letters_recorded")
            half = len(held) // 2
            report.deleted = self.delete(queue_url, held[:half])
            checkpoint("deleting")
            report.deleted += self.delete(queue_url, held[half:])
        report.seconds = time.monotonic() - started
        self.log.info(
            "Window %s: received %d, valid %d (%d already in manifest), invalid %d -> DLQ %d, deleted %d, "
            "%d requests in manifest, %.1f msg/s",
            window_id, report.received, report.valid, report.already_in_manifest, report.invalid,
            report.dead_lettered, report.deleted, report.requests_in_manifest, report.rate,
        )
        return report

    @contextmanager
    def _kept_hidden(self, queue_url: str, drain: _Drain, options: IntakeOptions) -> Iterator[None]:
        """Extend the visibility of every held message at half-time until the block ends."""
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(options.visibility_timeout / 2):
                with drain.lock:
                    held = list(drain.held.values())
                self.extend_visibility(queue_url, held, options.visibility_timeout)
                self.log.info("kept %d held messages hidden for another %d s", len(held),
                              options.visibility_timeout)

        thread = threading.Thread(target=heartbeat, name="sqs-visibility", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _drain(
        self,
        queue_url: str,
        options: IntakeOptions,
        models: Mapping[str, frozenset[str]],
        started: float,
        drain: _Drain,
    ) -> None:
        last_log = [started]

        def room() -> bool:
            with drain.lock:
                return len(drain.held) < options.max_messages

        def receiver() -> None:
            empty = 0
            while empty < options.empty_receives and room():
                messages = self.receive(queue_url, options)
                if not messages:
                    empty += 1
                    continue
                empty = 0
                checked = [self._check(m, models, options) for m in messages]
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
            if not room() or self.approximate_depth(queue_url) == 0:
                break

    @staticmethod
    def _check(message: Mapping[str, Any], models: Mapping[str, frozenset[str]], options: IntakeOptions) -> _Held:
        attributes = message.get("Attributes", {})
        result = validate_message(
            message.get("Body", ""),
            allowed_models=models,
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            max_receives=options.max_receives,
        )
        return _Held(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            request=result.request,
            reasons=result.reasons,
        )


def _chunks(items: Sequence[_Held], size: int) -> Iterable[Sequence[_Held]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
