"""Pure intake rules: sorting held messages, packing dead-letter batches within SQS limits."""

from __future__ import annotations

from warpspeed.intake.rules import (
    SQS_MAX_PAYLOAD,
    HeldMessage,
    dead_letter_batches,
    payload_size,
    sort_held,
)
from warpspeed.intake.schema import ScoringRequest
from warpspeed.window.collected_ids import Owner
from warpspeed.window.manifests import IntakeManifest


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
