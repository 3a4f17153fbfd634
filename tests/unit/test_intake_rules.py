"""Pure intake rules: sorting held messages, packing dead-letter batches within SQS limits."""

from __future__ import annotations

from datetime import UTC, datetime

from warpspeed.intake.rules import (
    SQS_MAX_PAYLOAD,
    HeldMessage,
    Owner,
    carried_receipts,
    dead_letter_batches,
    drop_owned,
    owners_of,
    payload_size,
    sort_held,
)
from warpspeed.intake.schema import ScoringRequest
from warpspeed.window.collected_ids import CollectedRecord
from warpspeed.window.manifests import IntakeManifest, RejectedMessage


def req(rid: str) -> ScoringRequest:
    return ScoringRequest(rid, "t1", "churn_risk", "v1", "scoring", "2026-11-20T21:00:00+00:00")


def held(mid: str, rid: str | None = None, body: str = "{}") -> HeldMessage:
    return HeldMessage(mid, f"rh-{mid}", body, req(rid) if rid else None, () if rid else ("bad",))


def test_dead_letter_batches_respect_count_and_payload_for_any_mix() -> None:
    sizes = [10, 250_000, 30_000, 30_000, 1, 262_100, 100_000, 100_000, 100_000, *([5] * 25)]
    messages = [held(f"m{i:03d}", body="x" * n) for i, n in enumerate(sizes)]
    batches = dead_letter_batches(messages, "w")
    assert sum(len(b) for b in batches) == len(messages)
    for batch in batches:
        assert 1 <= len(batch) <= 10
        assert sum(payload_size(e) for e in batch) <= SQS_MAX_PAYLOAD
        assert len({e["Id"] for e in batch}) == len(batch)
    truncated = [e for b in batches for e in b if "warpspeed_body_truncated" in e["MessageAttributes"]]
    assert len(truncated) == 1 and "262100 bytes" in truncated[0]["MessageAttributes"][
        "warpspeed_body_truncated"]["StringValue"]


def test_sort_held_duplicates_adoption_and_retries() -> None:
    earlier = IntakeManifest("w2").merged([req("r-old")], [], sources={"r-old": "m-old"})
    owners = {"r-sealed": Owner("w1", True), "r-open": Owner("w0", False)}
    out = sort_held(
        [held("m1", "r-new"), held("m2", "r-new"), held("m-old", "r-old"), held("m3", "r-old"),
         held("m4", "r-sealed"), held("m5", "r-open"), held("m6")],
        earlier, owners,
    )
    assert [r.request_id for r in out.requests] == ["r-new", "r-open"]
    assert out.sources == {"r-new": "m1", "r-open": "m5"}
    assert out.already_in_manifest == 1 and out.adopted == {"r-open": "w0"}
    assert {(d.message_id, d.window_id) for d in out.duplicates} == {("m2", "w2"), ("m3", "w2"), ("m4", "w1")}
    assert [h.message_id for h in out.rejected] == ["m6"]


def _record(window: str, sealed: bool, *ids: str) -> CollectedRecord:
    return CollectedRecord(window, datetime(2026, 11, 20, tzinfo=UTC), sealed, frozenset(ids))


def test_owners_skip_this_window_and_a_sealed_owner_wins() -> None:
    records = [_record("w0", False, "r1", "r2"), _record("w1", True, "r1"), _record("w2", False, "r2", "r3"),
               _record("w3", True, "r9")]
    owners = owners_of(records, "w3")
    assert owners == {"r1": Owner("w1", True), "r2": Owner("w0", False), "r3": Owner("w2", False)}


def test_a_rerun_drops_ids_a_sealed_window_took_and_keeps_adopted_ones() -> None:
    earlier = IntakeManifest("w0").merged([req("r-taken"), req("r-open"), req("r-mine")], [],
                                          sources={"r-taken": "m1", "r-open": "m2", "r-mine": "m3"})
    kept = drop_owned(earlier, {"r-taken": Owner("w1", True), "r-open": Owner("w2", False)})
    assert [r.request_id for r in kept.requests] == ["r-mine", "r-open"]
    assert [(d.message_id, d.window_id) for d in kept.duplicates] == [("m1", "w1")]
    assert "r-taken" not in kept.sources
    assert drop_owned(earlier, {}) is earlier


def test_carried_receipts_keep_refused_messages_the_dlq_never_got() -> None:
    earlier = IntakeManifest("w").merged(
        [], [RejectedMessage("m-unsent", ("bad",)), RejectedMessage("m-sent", ("bad",), dead_lettered=True)],
    ).with_pending_receipts({"m-unsent": "h1", "m-sent": "h2", "m-again": "h3", "m-ok": "h4"})
    assert carried_receipts(earlier, ["m-again"]) == {"m-sent": "h2", "m-ok": "h4"}
