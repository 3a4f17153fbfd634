"""Carry-over documents and the chain's decisions, on local storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from warpspeed.exceptions import ManifestError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.planning.batches import PendingRequest
from warpspeed.storage.documents import LocalStorage
from warpspeed.window.carryover import CarryOverChain, PendingDocument, PendingHead


def pending(rid: str, carried: int = 1) -> PendingRequest:
    req = ScoringRequest(rid, "t1", "churn_risk", "v1", "scoring", "2026-11-20T21:00:00+00:00", "low", 7,
                         {"k": 1})
    return PendingRequest(req, "20261120T2100Z", "20261120T2030Z", carried)


def test_pending_document_round_trips_deterministically() -> None:
    doc = PendingDocument("20261120T2100Z", "file:///x/pending.json", (pending("b", 2), pending("a")),
                          {"a": "window full", "b": "window full"})
    text = doc.to_json()
    back = PendingDocument.from_json(text)
    assert back.to_json() == text
    assert [p.request.request_id for p in back.requests] == ["a", "b"]
    assert back.requests[1] == pending("b", 2) and back.requests[1].request.params == {"k": 1}
    assert back.reasons == {"a": "window full", "b": "window full"}
    assert back.request_ids == {"a", "b"}


@pytest.mark.parametrize(("text", "message"), [
    ("nope", "not a JSON document"),
    ('{"schema": "warpspeed.plan/v1"}', "expected a warpspeed.pending/v1 document"),
    ('{"schema": "warpspeed.pending/v1", "window_id": "w", "requests": [{"request": {}}]}', "malformed"),
])
def test_bad_pending_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        PendingDocument.from_json(text)


def test_head_round_trips() -> None:
    head = PendingHead("w1", "file:///x/windows/w1/pending.json")
    assert PendingHead.from_json(head.to_json()) == head
    with pytest.raises(ManifestError, match="pending_head"):
        PendingHead.from_json(PendingDocument("w", None).to_json())


def test_chain_modes(tmp_path: Path) -> None:
    chain = CarryOverChain(LocalStorage(), (tmp_path / "storage").as_uri())
    assert chain.head() is None
    first = chain.resolve("w1")
    assert (first.mode, first.input_uri, first.pending) == ("first", None, ())
    chain.record("w1", first, (pending("a"),), {"a": "window full"})
    assert chain.resolve("w1").mode == "retry"  # written, head not moved yet
    assert chain.advance("w1", first) is True
    assert chain.advance("w1", first) is False
    assert chain.resolve("w1").mode == "retry"  # head names w1
    second = chain.resolve("w2")
    assert (second.mode, second.input_uri) == ("first", chain.pending_uri("w1"))
    assert [p.request.request_id for p in second.pending] == ["a"]
    chain.record("w2", second, (), {})
    chain.advance("w2", second)
    replay = chain.resolve("w1")
    assert replay.mode == "replay" and replay.input_uri is None
    before = (tmp_path / "storage" / "windows" / "w1" / "pending.json").read_text()
    chain.record("w1", replay, (pending("a"),), {"a": "changed reason"})  # same ids: allowed, not rewritten
    assert (tmp_path / "storage" / "windows" / "w1" / "pending.json").read_text() == before
    assert chain.advance("w1", replay) is False
    assert chain.head() == PendingHead("w2", chain.pending_uri("w2"))
