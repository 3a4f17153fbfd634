"""Thin wrapper of the SQS client for the scoring request queue and its dead-letter queue.

The collect protocol that uses these calls lives in :mod:`warpspeed.intake.service`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from warpspeed.exceptions import WarpSpeedConfigError, WarpSpeedError
from warpspeed.intake.rules import (
    REASONS_ATTRIBUTE,
    SQS_BATCH,
    HeldMessage,
    dead_letter_batches,
    replaced_body,
)
from warpspeed.window.collected_ids import DEFAULT_RETENTION

__all__ = ["REASONS_ATTRIBUTE", "SqsIntakeHook"]


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

    def approximate_depth(self, queue_url: str) -> int:
        """Return the queue's approximate number of visible messages."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0))

    def receive(self, queue_url: str, wait_seconds: int, visibility_timeout: int) -> list[dict[str, Any]]:
        """Receive up to ten messages with their receive counts, hidden for ``visibility_timeout`` s."""
        resp = self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        return list(resp.get("Messages", []))

    def queue_limits(self, queue_url: str, max_receives: int) -> timedelta:
        """Check the queue's redrive against the app's poison limit; return its retention.

        SQS moves a message to the DLQ, without any reason, once it was received more than
        ``maxReceiveCount`` times. The app must dead-letter it itself, with reasons, first.
        """
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["RedrivePolicy", "MessageRetentionPeriod"]
        )["Attributes"]
        if "RedrivePolicy" in attrs:
            limit = int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])
            if max_receives >= limit:
                raise WarpSpeedConfigError(
                    f"queue {queue_url}: the app's poison limit max_receives={max_receives} must be "
                    f"below the redrive policy's maxReceiveCount={limit}, or SQS dead-letters messages "
                    f"without reasons; lower IntakeOptions.max_receives or raise maxReceiveCount"
                )
        seconds = attrs.get("MessageRetentionPeriod")
        return timedelta(seconds=int(seconds)) if seconds else DEFAULT_RETENTION

    def delete(self, queue_url: str, receipts: Sequence[str], attempts: int = 4, *, strict: bool = True) -> int:
        """Delete messages in batches of ten, retrying entries that failed; return the count.

        :param strict: raise when entries still fail; otherwise log them (receipts an earlier
            attempt left may be stale: the message then reappears and is a duplicate).
        """
        deleted = 0
        for chunk in _chunks(receipts, SQS_BATCH):
            pending = {str(i): h for i, h in enumerate(chunk)}
            for attempt in range(attempts):
                resp = self.sqs.delete_message_batch(
                    QueueUrl=queue_url, Entries=[{"Id": i, "ReceiptHandle": h} for i, h in pending.items()]
                )
                for ok in resp.get("Successful", []):
                    pending.pop(ok["Id"], None)
                    deleted += 1
                failed = resp.get("Failed", [])
                gone = _applied_before(resp, failed)
                if gone:  # botocore retried the call: an attempt whose answer was lost deleted them
                    self.log.warning("%d deletes were retried by botocore and now name no message: an "
                                     "attempt whose answer was lost deleted them (or, if stale, they "
                                     "reappear and are recorded as duplicates)", len(gone))
                    for entry_id in gone:
                        pending.pop(entry_id, None)
                    failed = [f for f in failed if f.get("Id") not in gone]
                if not pending or (not strict and all(f.get("SenderFault") for f in failed)):
                    break
                self.log.warning(
                    "%d of %d deletes failed (attempt %d): %s", len(pending), len(chunk), attempt + 1,
                    "; ".join(f"{f.get('Code')}: {f.get('Message')}" for f in failed),
                )
                time.sleep(min(2**attempt * 0.2, 2.0))
            if pending and strict:
                raise WarpSpeedError(
                    f"could not delete {len(pending)} messages after {attempts} attempts; their receipts "
                    "are in the intake manifest, so a retry of this task deletes them first"
                )
            if pending:
                self.log.warning("%d receipts of an earlier attempt could not be deleted (stale); those "
                                 "messages reappear and are recorded as duplicates", len(pending))
        return deleted

    def send_to_dead_letter(self, dlq_url: str, held: Sequence[HeldMessage], window_id: str) -> int:
        """Send refused messages to the DLQ with their reasons; return how many were sent.

        Batches respect both SQS limits (10 entries, 256 KiB in total); a body too large to fit
        with its attributes is truncated and says so in ``warpspeed_body_truncated``. An entry the
        DLQ refuses as the sender's fault (its content) is sent once more as an ASCII reference
        with the refusal in ``warpspeed_body_replaced``, so one message cannot block the others.
        """
        sent = 0
        for batch in dead_letter_batches(held, window_id):
            entries = {e["Id"]: e for e in batch}
            for attempt in range(5):
                resp = self.sqs.send_message_batch(QueueUrl=dlq_url, Entries=list(entries.values()))
                for ok in resp.get("Successful", []):
                    entries.pop(ok["Id"], None)
                    sent += 1
                if not entries:
                    break
                for failure in resp.get("Failed", []):
                    if failure.get("SenderFault") and failure["Id"] in entries and attempt < 4:
                        entries[failure["Id"]] = replaced_body(entries[failure["Id"]], failure)
                time.sleep(min(2**attempt * 0.2, 2.0))
            if entries:
                raise WarpSpeedError(f"the dead-letter queue refused {len(entries)} messages; nothing deleted")
        return sent

    def extend_visibility(self, queue_url: str, held: Iterable[HeldMessage], seconds: int) -> None:
        """Keep held messages hidden for ``seconds`` more (already deleted ones just fail)."""
        for chunk in _chunks(list(held), SQS_BATCH):
            self.sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h.receipt_handle, "VisibilityTimeout": seconds}
                    for i, h in enumerate(chunk)
                ],
            )


def _applied_before(resp: Mapping[str, Any], failed: Sequence[Mapping[str, Any]]) -> set[str]:
    """Return the ids of batch entries an earlier, unanswered attempt of the same call may have applied.

    When botocore retried a call (``RetryAttempts`` > 0, e.g. after the connection was reset
    while the answer was on its way), entries that now fail with ``ReceiptHandleIsInvalid`` were
    most likely deleted by the attempt whose answer was lost (SQS servers such as ElasticMQ refuse
    a second delete of a message that no longer exists).
    """
    if not resp.get("ResponseMetadata", {}).get("RetryAttempts"):
        return set()
    return {str(f["Id"]) for f in failed if f.get("Code") == "ReceiptHandleIsInvalid" and "Id" in f}


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
