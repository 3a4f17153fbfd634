"""Lossless intake on the real SQS server (ElasticMQ) on loopback: crash anywhere, rerun, nothing lost or doubled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sqs_support import MODELS, body, drain_dlq, hook_for, queue_total, wait_until_visible
from warpspeed.embedded.seed import send_bodies
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.hooks.sqs import REASONS_ATTRIBUTE, SqsIntakeHook
from warpspeed.intake.service import IntakeOptions, IntakeService
from warpspeed.storage.documents import LocalStorage
from warpspeed.window.manifests import IntakeManifest

VISIBILITY = 10
"""Seconds a received message stays hidden; the intake's heartbeat extends it at half-time. With 4 s,
a heartbeat 2 s late on a machine at load 20 (ci42) let valid messages show again; received a fifth
time, the queue's redrive policy moved them to the DLQ in the middle of the collect."""


class Crash(RuntimeError):
    pass


def bad_body(i: int) -> str:
    return [f'{{"schema_version": 1, "request_id": "bad-{i}"}}', f"garbage {i}",
            json.dumps({"schema_version": 7, "request_id": f"bad-{i}"})][i % 3]


def collect(hook: SqsIntakeHook, sqs: LocalSqs, manifest_uri: str, fault: Any = None) -> Any:
    return IntakeService(hook).collect_window(
        queue_url=sqs.queue_url, dlq_url=sqs.dead_letter_queue_url, window_id="20261120T2100Z",
        manifest_uri=manifest_uri, storage=LocalStorage(), allowed_models=MODELS,
        options=IntakeOptions(visibility_timeout=VISIBILITY, wait_seconds=0, receivers=4), fault=fault,
    )


def test_collect_writes_manifest_dead_letters_and_empties_the_queue(
    sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(sqs, monkeypatch)
    valid = [body(i) for i in range(120)]
    send_bodies(sqs.client(), sqs.queue_url, [*valid, body(5), body(6), bad_body(0), bad_body(1)])
    uri = (tmp_path / "intake.json").as_uri()
    report = collect(hook, sqs, uri)

    manifest = IntakeManifest.from_json(LocalStorage().read_text(uri))
    assert [r.request_id for r in manifest.requests] == [f"req-{i:05d}" for i in range(120)]
    assert (report.received, report.valid, report.invalid, report.deleted) == (124, 122, 2, 124)
    assert report.dead_lettered == 2 and queue_total(sqs) == 0
    dead = drain_dlq(sqs)
    reasons = sorted(m["MessageAttributes"][REASONS_ATTRIBUTE]["StringValue"] for m in dead)
    assert "'request_id'" not in reasons[0]
    assert any("'tenant_id' is a required property" in r for r in reasons)
    assert any("unparseable JSON" in r for r in reasons)
    assert {m["Body"] for m in dead} == {bad_body(0), bad_body(1)}
    assert [r.message_id for r in manifest.rejected] == sorted(
        m["MessageAttributes"]["warpspeed_source_message_id"]["StringValue"] for m in dead
    )


@pytest.mark.parametrize(
    "crash_at", ["received", "manifest_written", "dead_lettered", "dead_letters_recorded", "deleting"]
)
def test_a_crash_anywhere_then_a_retry_loses_and_doubles_nothing(
    crash_at: str, sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_valid, n_bad = 2000, 60
    bodies = [body(i) for i in range(n_valid)] + [bad_body(i) for i in range(n_bad)]
    bodies += [body(i) for i in range(0, n_valid, 100)]  # producer retries: same request ids again
    send_bodies(sqs.client(), sqs.queue_url, bodies)
    uri = (tmp_path / "intake.json").as_uri()

    def fault(step: str) -> None:
        if step == crash_at:
            raise Crash(step)

    with pytest.raises(Crash):
        collect(hook_for(sqs, monkeypatch), sqs, uri, fault)
    wait_until_visible(sqs)  # what the crash held becomes visible again
    collect(hook_for(sqs, monkeypatch), sqs, uri)

    manifest = IntakeManifest.from_json(LocalStorage().read_text(uri))
    ids = [r.request_id for r in manifest.requests]
    assert len(ids) == len(set(ids)) == n_valid
    assert set(ids) == {f"req-{i:05d}" for i in range(n_valid)}
    assert queue_total(sqs) == 0
    dead = drain_dlq(sqs)
    assert {m["Body"] for m in dead} == {bad_body(i) for i in range(n_bad)}
    assert all(m["MessageAttributes"][REASONS_ATTRIBUTE]["StringValue"] for m in dead)
    assert len({m["MessageAttributes"]["warpspeed_source_message_id"]["StringValue"] for m in dead}) == n_bad
    if crash_at != "dead_lettered":
        assert len(dead) == n_bad  # only a crash between the DLQ send and its record may send twice


def test_partial_delete_failures_are_retried(sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hook_for(sqs, monkeypatch)
    send_bodies(sqs.client(), sqs.queue_url, [body(i) for i in range(30)])
    real = hook.conn.delete_message_batch
    calls = {"n": 0}

    def flaky(**kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:  # first call: the last two entries fail, as SQS reports partial failures
            ok = real(**{**kwargs, "Entries": kwargs["Entries"][:-2]})
            ok["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                            for e in kwargs["Entries"][-2:]]
            return ok
        return real(**kwargs)

    monkeypatch.setattr(hook.conn, "delete_message_batch", flaky)
    report = collect(hook, sqs, (tmp_path / "intake.json").as_uri())
    assert report.deleted == 30 and queue_total(sqs) == 0 and calls["n"] >= 4
