"""Exactly once under faults (issue 13): hostile input, crashes past the manifest, redeliveries.

Runs against the loopback SQS server of ``tests/conftest.py`` through the boto3 API only.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.sqs_support import MODELS, body, drain_dlq, hook_for, queue_total, wait_until_visible
from warpspeed.embedded.seed import send_bodies
from warpspeed.exceptions import WarpSpeedConfigError, WarpSpeedError
from warpspeed.hooks.sqs import REASONS_ATTRIBUTE, SqsIntakeHook
from warpspeed.intake.service import IntakeOptions, IntakeService
from warpspeed.storage.documents import LocalStorage
from warpspeed.window.collected_ids import CollectedIds, CollectedRecord
from warpspeed.window.manifests import IntakeManifest

W1, W2 = "20261120T2100Z", "20261120T2130Z"


class Crash(RuntimeError):
    pass


def crash_at(step: str) -> Any:
    def fault(name: str) -> None:
        if name == step:
            raise Crash(name)
    return fault


def collect(hook: SqsIntakeHook, sqs: Any, tmp_path: Path, window_id: str = W1, *, visibility: int = 4,
            fault: Any = None, **options: Any) -> Any:
    return IntakeService(hook).collect_window(
        queue_url=sqs.queue_url, dlq_url=sqs.dead_letter_queue_url, window_id=window_id,
        manifest_uri=manifest_uri(tmp_path, window_id), storage=LocalStorage(), allowed_models=MODELS,
        options=IntakeOptions(visibility_timeout=visibility, wait_seconds=0, receivers=2, **options),
        fault=fault, storage_prefix=tmp_path.as_uri(),
    )


def manifest_uri(tmp_path: Path, window_id: str) -> str:
    return (tmp_path / "windows" / window_id / "intake.json").as_uri()


def manifest(tmp_path: Path, window_id: str = W1) -> IntakeManifest:
    return IntakeManifest.from_json(LocalStorage().read_text(manifest_uri(tmp_path, window_id)))


def ids(m: IntakeManifest) -> list[str]:
    return [r.request_id for r in m.requests]


# -- item 1: a poison message never blocks its neighbours ----------------------------------------

def test_a_deeply_nested_message_is_dead_lettered_and_the_window_goes_on(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep: dict = {}
    for _ in range(500):
        deep = {"a": deep}
    hostile = json.loads(body(999)) | {"request_id": "deep-1", "params": deep}
    send_bodies(sqs.client(), sqs.queue_url, [*(body(i) for i in range(20)), json.dumps(hostile)])
    report = collect(hook_for(sqs, monkeypatch), sqs, tmp_path)
    assert ids(manifest(tmp_path)) == [f"req-{i:05d}" for i in range(20)]
    assert report.dead_lettered == 1 and queue_total(sqs) == 0
    (dead,) = drain_dlq(sqs)
    assert "deeper than" in dead["MessageAttributes"][REASONS_ATTRIBUTE]["StringValue"]


# -- item 2: a crash after the manifest, then the retry --------------------------------------------

def test_a_retry_right_after_a_crash_past_the_manifest_deletes_what_the_crash_held(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(40)])
    with pytest.raises(Crash):
        collect(hook_for(sqs, monkeypatch), sqs, tmp_path, visibility=60, fault=crash_at("manifest_written"))
    # the retry comes long before the 60 s visibility ends: it receives nothing, but must delete
    report = collect(hook_for(sqs, monkeypatch), sqs, tmp_path, visibility=60)
    assert queue_total(sqs) == 0 and report.deleted == 40
    finished = manifest(tmp_path)
    assert len(ids(finished)) == 40 and finished.pending_receipts == {}


def test_a_heartbeat_that_cannot_extend_fails_the_collect_before_any_delete(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(sqs, monkeypatch)
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(10)])

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "ChangeMessageVisibilityBatch")

    monkeypatch.setattr(hook, "extend_visibility", broken)
    with pytest.raises(WarpSpeedError, match="could not extend the visibility"):
        collect(hook, sqs, tmp_path, visibility=2, fault=lambda step: time.sleep(1.6) if step == "received" else None)
    assert queue_total(sqs) == 10  # nothing deleted: the next attempt receives them again
    wait_until_visible(sqs)
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path)
    assert len(ids(manifest(tmp_path))) == 10 and queue_total(sqs) == 0


# -- cross-window exactly once ---------------------------------------------------------------------

def test_redelivered_and_resent_ids_are_duplicates_of_their_window_not_scored_again(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(50)])
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path, W1)
    newer = json.loads(body(3)) | {"request_id": "req-newer-3", "requested_at": "2026-11-20T21:40:00+00:00"}
    # a redelivery/re-send of 10 old ids, 4 new ids, and a newer request for the pair of req-00003
    send_bodies(sqs.client(), sqs.queue_url,
                [*(body(i) for i in range(10)), *(body(i) for i in range(100, 104)), json.dumps(newer)])
    report = collect(hook_for(sqs, monkeypatch), sqs, tmp_path, W2)

    second = manifest(tmp_path, W2)
    assert ids(second) == [f"req-{i:05d}" for i in range(100, 104)] + ["req-newer-3"]
    assert sorted(d.request_id for d in second.duplicates) == [f"req-{i:05d}" for i in range(10)]
    assert {d.window_id for d in second.duplicates} == {W1}
    assert all(d.reason == f"request id already collected by window {W1}" for d in second.duplicates)
    assert report.duplicates == 10 and queue_total(sqs) == 0
    assert len(ids(manifest(tmp_path, W1))) == 50  # the first window keeps what it owns


def test_a_retry_of_the_same_window_re_records_its_own_ids_without_duplicates(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(30)])
    with pytest.raises(Crash):
        collect(hook_for(sqs, monkeypatch), sqs, tmp_path, fault=crash_at("ids_recorded"))
    wait_until_visible(sqs)  # even if the crash's receipts went stale, the retry sees them again
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path)
    m = manifest(tmp_path)
    assert len(ids(m)) == 30 and m.duplicates == () and queue_total(sqs) == 0
    store = CollectedIds(LocalStorage(), tmp_path.as_uri())
    record = CollectedRecord.from_json(LocalStorage().read_text(store.uri(W1)))
    assert record.sealed and record.request_ids == frozenset(ids(m))


def test_a_window_whose_collect_never_finished_is_adopted_and_a_rerun_gives_its_ids_up(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(20)])
    with pytest.raises(Crash):  # W1's collect fails for good after recording, before deleting
        collect(hook_for(sqs, monkeypatch), sqs, tmp_path, W1, fault=crash_at("ids_recorded"))
    wait_until_visible(sqs)
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path, W2)
    assert len(ids(manifest(tmp_path, W2))) == 20 and queue_total(sqs) == 0  # adopted: not lost

    collect(hook_for(sqs, monkeypatch), sqs, tmp_path, W1)  # an operator clears W1 later
    rerun = manifest(tmp_path, W1)
    assert ids(rerun) == [] and {d.window_id for d in rerun.duplicates} == {W2}


def test_records_older_than_the_queue_retention_are_pruned(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CollectedIds(LocalStorage(), tmp_path.as_uri())
    store.record("20200101T0000Z", ["req-00001"], sealed=True, now=datetime.now(UTC) - timedelta(days=30))
    store.record("20261120T2000Z", ["req-00002"], sealed=True)
    send_bodies(sqs.client(), sqs.queue_url, [body(1), body(2)])
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path)
    assert ids(manifest(tmp_path)) == ["req-00001"]  # beyond the retention: a new request
    assert not LocalStorage().exists(store.uri("20200101T0000Z"))


# -- item 6: DLQ batches within both SQS limits -----------------------------------------------------

def test_dead_letter_batches_stay_within_the_sqs_payload_limit(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(sqs, monkeypatch)
    big = [json.dumps({"schema_version": 7, "request_id": f"big-{i}", "pad": "x" * 60_000}) for i in range(12)]
    huge = json.dumps({"schema_version": 1, "pad": "y" * 262_050})  # just below the SQS limit: too large
    client = sqs.client()
    for text in [*big, huge, body(1)]:  # one by one: ten of them exceed a batch's 256 KiB
        client.send_message(QueueUrl=sqs.queue_url, MessageBody=text)
    real = hook.conn.send_message_batch

    def as_sqs(**kwargs: Any) -> Any:  # SQS's documented limits, whatever the local server checks
        sizes = [len(e["MessageBody"].encode()) + sum(len(k) + len(v["DataType"]) + len(v["StringValue"].encode())
                                                      for k, v in e.get("MessageAttributes", {}).items())
                 for e in kwargs["Entries"]]
        if len(sizes) > 10 or sum(sizes) > 262_144:
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.BatchRequestTooLong",
                                         "Message": f"{sum(sizes)} bytes"}}, "SendMessageBatch")
        return real(**kwargs)

    monkeypatch.setattr(hook.conn, "send_message_batch", as_sqs)
    report = collect(hook, sqs, tmp_path)
    assert report.dead_lettered == 13 and queue_total(sqs) == 0
    dead = drain_dlq(sqs)
    assert len(dead) == 13
    (truncated,) = [m for m in dead if "warpspeed_body_truncated" in m["MessageAttributes"]]
    assert "body too large" in truncated["MessageAttributes"][REASONS_ATTRIBUTE]["StringValue"]
    assert huge.startswith(truncated["Body"])


# -- item 8: the same request id twice in one window ------------------------------------------------

def test_the_same_request_id_twice_in_a_window_is_recorded_as_a_duplicate_and_deleted(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_bodies(sqs.client(), sqs.queue_url, [body(1), body(2), body(1)])
    report = collect(hook_for(sqs, monkeypatch), sqs, tmp_path)
    m = manifest(tmp_path)
    assert ids(m) == ["req-00001", "req-00002"]
    (dup,) = m.duplicates
    assert dup.request_id == "req-00001" and dup.window_id == W1 and "already in this window" in dup.reason
    assert dup.message_id != m.sources["req-00001"]
    assert report.duplicates == 1 and report.deleted == 3 and queue_total(sqs) == 0


# -- item 9: the app's poison check fires before the queue's redrive ---------------------------------

def test_an_app_limit_not_below_the_redrive_limit_is_refused(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WarpSpeedConfigError, match="maxReceiveCount"):
        collect(hook_for(sqs, monkeypatch), sqs, tmp_path, max_receives=5)  # the queue redrives after 5


def test_a_message_at_the_app_limit_is_dead_lettered_with_its_reason(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sqs.client()
    send_bodies(client, sqs.queue_url, [body(7)])
    for _ in range(3):  # three receives that never finished
        (msg,) = client.receive_message(QueueUrl=sqs.queue_url, WaitTimeSeconds=1).get("Messages", [])
        client.change_message_visibility(QueueUrl=sqs.queue_url, ReceiptHandle=msg["ReceiptHandle"],
                                         VisibilityTimeout=0)
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path, max_receives=4)  # this is receive 4
    assert ids(manifest(tmp_path)) == []
    (dead,) = drain_dlq(sqs)
    assert "too many receives: 4 >= 4" in dead["MessageAttributes"][REASONS_ATTRIBUTE]["StringValue"]


def test_a_body_the_dlq_refuses_is_sent_as_a_reference_and_blocks_nobody(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(sqs, monkeypatch)
    send_bodies(sqs.client(), sqs.queue_url, ["refuse-me: not JSON", "plain garbage", body(1)])
    real = hook.conn.send_message_batch

    def picky(**kwargs: Any) -> Any:  # the DLQ refuses one entry's content, as SQS does per entry
        refused = [e for e in kwargs["Entries"] if e["MessageBody"].startswith("refuse-me")]
        rest = [e for e in kwargs["Entries"] if e not in refused]
        resp = real(**{**kwargs, "Entries": rest}) if rest else {"Successful": []}
        resp.setdefault("Failed", []).extend(
            {"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents", "Message": "no"} for e in refused)
        return resp

    monkeypatch.setattr(hook.conn, "send_message_batch", picky)
    report = collect(hook, sqs, tmp_path)
    assert report.dead_lettered == 2 and queue_total(sqs) == 0 and ids(manifest(tmp_path)) == ["req-00001"]
    replaced = [m for m in drain_dlq(sqs) if "warpspeed_body_replaced" in m["MessageAttributes"]]
    assert len(replaced) == 1 and json.loads(replaced[0]["Body"])["excerpt"] == "refuse-me: not JSON"
    assert "InvalidMessageContents" in replaced[0]["MessageAttributes"]["warpspeed_body_replaced"]["StringValue"]
    assert replaced[0]["MessageAttributes"][REASONS_ATTRIBUTE]["StringValue"]


@pytest.mark.parametrize("step", ["ids_recorded", "deleting", "deleted"])
def test_a_crash_at_the_new_steps_then_an_immediate_retry_finishes_the_window(
    step: str, sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(30)] + [body(3), "garbage"])
    visibility = 8 if step == "ids_recorded" else 60
    with pytest.raises(Crash):
        collect(hook_for(sqs, monkeypatch), sqs, tmp_path, visibility=visibility, fault=crash_at(step))
    collect(hook_for(sqs, monkeypatch), sqs, tmp_path, visibility=visibility)
    m = manifest(tmp_path)
    assert len(ids(m)) == 30 and len(m.duplicates) == 1 and m.pending_receipts == {}
    dead = drain_dlq(sqs)
    if queue_total(sqs):  # a refused message the DLQ never got is not deleted: it comes back
        assert step == "ids_recorded" and dead == []
        wait_until_visible(sqs)
        collect(hook_for(sqs, monkeypatch), sqs, tmp_path, W2)  # and the next window refuses it
        dead = drain_dlq(sqs)
    assert queue_total(sqs) == 0 and [d["Body"] for d in dead] == ["garbage"]
    store = CollectedIds(LocalStorage(), tmp_path.as_uri())
    record = CollectedRecord.from_json(LocalStorage().read_text(store.uri(W1)))
    assert record.sealed and record.request_ids == frozenset(ids(m))
