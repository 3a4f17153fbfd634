from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from warpspeed.exceptions import ManifestError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.window.manifests import (
    BatchManifest,
    BatchRun,
    IntakeManifest,
    RejectedMessage,
    WindowLayout,
    window_id_for,
)


def req(request_id: str, tenant: str = "t1") -> ScoringRequest:
    return ScoringRequest(request_id, tenant, "churn_risk", "v1", "scoring", "2026-11-20T21:00:00+00:00")


def test_window_id_is_utc_and_rejects_naive_datetimes() -> None:
    cet = timezone(timedelta(hours=1))
    assert window_id_for(datetime(2026, 11, 20, 22, 30, tzinfo=cet)) == "20261120T2130Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        window_id_for(datetime(2026, 11, 20, 21, 30))


def test_layout_places_documents_under_the_window() -> None:
    layout = WindowLayout("s3://bucket/ws/", "20261120T2100Z")
    assert layout.intake_uri == "s3://bucket/ws/windows/20261120T2100Z/intake.json"
    assert layout.batch_uri("b1") == "s3://bucket/ws/windows/20261120T2100Z/batches/b1.json"
    assert layout.run_uri("b1").endswith("/runs/b1.json")


def test_merge_keeps_first_copy_of_a_request_and_counts_attempts() -> None:
    first = IntakeManifest("w").merged([req("a"), req("b")], [RejectedMessage("m1", ("bad",))])
    changed_b = ScoringRequest("b", "other", "churn_risk", "v1", "scoring", "2026-11-20T21:00:00+00:00")
    second = first.merged([changed_b, req("c")], [RejectedMessage("m1", ("bad",)), RejectedMessage("m2", ("x",))])
    assert [r.request_id for r in second.requests] == ["a", "b", "c"]
    assert second.requests[1].tenant_id == "t1"
    assert [r.message_id for r in second.rejected] == ["m1", "m2"]
    assert second.attempts == 2


def test_intake_round_trips_and_is_deterministic() -> None:
    manifest = IntakeManifest("w").merged([req("b"), req("a")], [RejectedMessage("m", ("r1", "r2"), "{")])
    text = manifest.to_json()
    assert IntakeManifest.from_json(text) == manifest
    assert IntakeManifest.from_json(text).to_json() == text


def test_batch_manifest_and_run_round_trip() -> None:
    batch = BatchManifest("b1", "w", "scoring", (req("a", "t2"), req("b", "t1")), 10, "file:///m", "file:///s")
    assert BatchManifest.from_json(batch.to_json()) == batch
    assert batch.tenants == ("t1", "t2")
    run = BatchRun("b1", "w", "scoring", "u", "s", "local", "c", False, "SUCCEEDED",
                   datetime.now(UTC).isoformat(), datetime.now(UTC).isoformat(), 1.5)
    assert BatchRun.from_json(run.to_json()) == run


def test_wrong_document_kind_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"expected a warpspeed.batch/v1 document, found 'warpspeed.intake/v1'"):
        BatchManifest.from_json(IntakeManifest("w").to_json())
    with pytest.raises(ManifestError, match="not a JSON document"):
        IntakeManifest.from_json("{")
