"""The soak auditor's decisions: dataclasses in, counts out, including every failure it must catch."""

from __future__ import annotations

import json
import random
from dataclasses import replace

from warpspeed.embedded.soak.audit import (
    BatchRecord,
    DlqEntry,
    Evidence,
    LedgerRow,
    Member,
    PlanRecord,
    Slice,
    WindowIntake,
    audit,
)
from warpspeed.embedded.soak.producer import (
    EXPECT_DEAD_LETTER,
    EXPECT_DUPLICATE,
    EXPECT_REQUEST,
    INTAKE_REFUSED_KINDS,
    UNKNOWN_VERSION,
    SentMessage,
    hostile_body,
)
from warpspeed.intake.schema import validate_message

T, M = "tenant-000", "churn_risk"


def sent(mid: str, rid: str | None, expect: str = EXPECT_REQUEST, tenant: str = T) -> SentMessage:
    return SentMessage(mid, "valid" if expect == EXPECT_REQUEST else "x", expect, rid, tenant if rid else None,
                       M if rid else None)


def healthy() -> Evidence:
    """r1 and r2 (same pair) scored in b1 then b2; r3 superseded by r2; a producer duplicate of r1;
    one hostile message dead-lettered with its reason."""
    return Evidence(
        sent=[sent("m1", "r1"), sent("m2", "r2"), sent("m3", "r3"), sent("m4", "r1", EXPECT_DUPLICATE),
              sent("m5", None, EXPECT_DEAD_LETTER)],
        intakes=[WindowIntake("w1", {"r1": "m1"}, frozenset({"m4"}), frozenset({"m5"})),
                 WindowIntake("w2", {"r2": "m2", "r3": "m3"})],
        plans=[PlanRecord("w1"), PlanRecord("w2", {"r3": "superseded by r2"})],
        batches=[BatchRecord("b1", "w1", (Member("r1", T, M),)), BatchRecord("b2", "w2", (Member("r2", T, M),))],
        ledger=[LedgerRow("b1", "succeeded", "2026-11-21T10:01:00"),
                LedgerRow("b2", "succeeded", "2026-11-21T10:02:00")],
        slices={(T, M): Slice(frozenset({"b2"}), 100, 100)},
        queue_left=[],
        dlq=[DlqEntry("d1", "m5", "not valid JSON")],
        run_states={"run1": "success", "run2": "success"},
        kills=3,
    )


def test_a_healthy_soak_counts_every_outcome() -> None:
    report = audit(healthy())
    f = report.figures
    assert report.ok, report.examples
    assert (f["valid"], f["scored_exactly_once"], f["superseded_with_record"]) == (3, 2, 1)
    assert (f["lost"], f["scored_twice"], f["dead_lettered_without_reason"], f["unaccounted"]) == (0, 0, 0, 0)
    assert (f["dead_lettered_with_reason"], f["duplicates_recorded"], f["windows"], f["kills"]) == (1, 1, 2, 3)
    assert f["requests_sent"] == 5 and f["failed_windows"] == 0


def test_a_lost_request_is_caught() -> None:
    ev = healthy()
    ev = replace(ev, batches=[ev.batches[0], BatchRecord("b2", "w2", ())])  # r2 never made it into a batch
    report = audit(ev)
    assert not report.ok
    # r2; r3, whose supersedor was never scored; r1, whose slice holds a batch with no record of the pair
    assert report.figures["lost"] == 3
    assert any("r2: collected, never in a succeeded batch" in e for e in report.examples["lost"])


def test_a_request_left_in_the_queue_is_lost() -> None:
    ev = replace(healthy(), queue_left=[json.dumps({"request_id": "r9"})],
                 sent=[*healthy().sent, sent("m9", "r9")])
    report = audit(ev)
    assert report.figures["lost"] == 1 and report.figures["left_in_queue"] == 1
    assert report.examples["lost"] == ["r9: still in the queue"]


def test_a_failed_batch_does_not_count_as_scored() -> None:
    ev = replace(healthy(), ledger=[LedgerRow("b1", "failed", "x"), healthy().ledger[1]])
    assert audit(ev).figures["lost"] == 1


def test_a_double_score_is_caught() -> None:
    ev = healthy()
    ev = replace(ev, batches=[*ev.batches, BatchRecord("b3", "w3", (Member("r1", T, M),))],
                 ledger=[*ev.ledger, LedgerRow("b3", "succeeded", "2026-11-21T10:00:30")])
    report = audit(ev)
    assert not report.ok and report.figures["scored_twice"] == 1
    assert report.examples["scored_twice"] == ["r1 in ['b1', 'b3']"]


def test_a_rerun_of_one_batch_is_not_a_double_score() -> None:
    ev = healthy()
    ev = replace(ev, ledger=[*ev.ledger, LedgerRow("b1", "succeeded", "2026-11-21T10:01:30")])
    assert audit(ev).figures["scored_twice"] == 0


def test_doubled_rows_in_a_slice_are_caught() -> None:
    ev = replace(healthy(), slices={(T, M): Slice(frozenset({"b2"}), 200, 100)})
    report = audit(ev)
    assert not report.ok and report.figures["scored_twice"] == 2


def test_a_slice_overwritten_by_an_earlier_batch_is_caught() -> None:
    ev = replace(healthy(), slices={(T, M): Slice(frozenset({"b1"}), 100, 100)})  # b2's scores are gone
    report = audit(ev)
    assert not report.ok and report.figures["lost"] == 1
    assert "holds ['b1'], scored by b2" in report.examples["slice_wrong"][0]


def test_a_dlq_entry_without_a_reason_is_caught() -> None:
    ev = replace(healthy(), dlq=[*healthy().dlq, DlqEntry("d2")])
    report = audit(ev)
    assert not report.ok and report.figures["dead_lettered_without_reason"] == 1


def test_a_hostile_message_missing_from_the_dlq_is_unaccounted() -> None:
    report = audit(replace(healthy(), dlq=[]))
    assert not report.ok and report.figures["unaccounted"] == 1


def test_a_duplicate_with_no_record_is_unaccounted() -> None:
    ev = healthy()
    report = audit(replace(ev, intakes=[replace(ev.intakes[0], duplicate_messages=frozenset()), ev.intakes[1]]))
    assert not report.ok and report.figures["unaccounted"] == 1


def test_a_valid_request_dead_lettered_with_its_reason_is_not_lost() -> None:
    ev = healthy()
    ev = replace(ev, sent=[*ev.sent, sent("m7", "r7")], dlq=[*ev.dlq, DlqEntry("d7", "m7", "too many receives")])
    f = audit(ev).figures
    assert f["lost"] == 0 and f["valid_dead_lettered_with_reason"] == 1


def test_failed_runs_are_counted() -> None:
    assert audit(replace(healthy(), run_states={"a": "failed", "b": "success"})).figures["failed_windows"] == 1


def test_every_hostile_body_is_refused_by_intake() -> None:
    for kind in INTAKE_REFUSED_KINDS:
        body = hostile_body(kind, random.Random(1), "tenant-001")
        result = validate_message(body, allowed_models={"scoring": frozenset({"churn_risk"})})
        assert not result.ok, kind


def test_an_unknown_version_passes_intake_with_its_request_id() -> None:
    body = hostile_body("unknown_version", random.Random(1), "tenant-001")
    result = validate_message(body, allowed_models={"scoring": frozenset({"churn_risk"})})
    assert result.ok and result.request is not None and result.request.model_version == UNKNOWN_VERSION


def _unknown(ev: Evidence, **changes: object) -> Evidence:
    """``healthy`` plus an unknown-version request u1 (message m8), collected in w2."""
    ev = replace(ev, sent=[*ev.sent, SentMessage("m8", "unknown_version", EXPECT_DEAD_LETTER, "u1", T, M)],
                 intakes=[ev.intakes[0], replace(ev.intakes[1], sources={**ev.intakes[1].sources, "u1": "m8"})])
    return replace(ev, **changes)  # type: ignore[arg-type]


def test_an_unknown_version_refused_by_the_plan_to_the_dlq_is_accounted() -> None:
    ev = healthy()
    f = audit(_unknown(ev, dlq=[*ev.dlq, DlqEntry("d8", "m8", "model churn_risk v999 not found")],
                       plans=[ev.plans[0], replace(ev.plans[1], refused={"u1": "model churn_risk v999 not found"})]
                       )).figures
    assert (f["unaccounted"], f["hostile_dead_lettered_with_reason"], f["hostile_refused_by_plan"]) == (0, 2, 1)


def test_an_unknown_version_superseded_by_a_scored_request_is_accounted() -> None:
    ev = healthy()
    plans = [ev.plans[0], replace(ev.plans[1], superseded={**ev.plans[1].superseded, "u1": "superseded by r2"})]
    report = audit(_unknown(ev, plans=plans))
    assert report.ok and report.figures["hostile_superseded_with_record"] == 1


def test_an_unknown_version_neither_dead_lettered_nor_superseded_is_unaccounted() -> None:
    report = audit(_unknown(healthy()))
    assert not report.ok and report.figures["unaccounted"] == 1


def test_an_unknown_version_in_a_succeeded_batch_is_caught() -> None:
    ev = healthy()
    report = audit(_unknown(ev, batches=[ev.batches[0], BatchRecord("b2", "w2", (Member("r2", T, M),
                                                                                Member("u1", T, M)))],
                            dlq=[*ev.dlq, DlqEntry("d8", "m8", "not found")]))
    assert not report.ok and report.figures["hostile_scored"] == 1
