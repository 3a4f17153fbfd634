"""The soak auditor's decisions: dataclasses in, counts out, including every failure it must catch."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

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


def sent(mid: str, rid: str | None, expect: str = EXPECT_REQUEST, tenant: str = T, at: str | None = None,
         model: str = M) -> SentMessage:
    return SentMessage(mid, "valid" if expect == EXPECT_REQUEST else "x", expect, rid, tenant if rid else None,
                       model if rid else None, at)


def healthy() -> Evidence:
    """r1 and r2 (same pair) scored in b1 then b2; r3 superseded by r2 (newer); a producer duplicate
    of r1; one hostile message dead-lettered with its reason. The tenant has 100 accounts."""
    return Evidence(
        sent=[sent("m1", "r1", at="2026-11-21T10:00:00+00:00"), sent("m2", "r2", at="2026-11-21T10:00:02+00:00"),
              sent("m3", "r3", at="2026-11-21T10:00:01+00:00"), sent("m4", "r1", EXPECT_DUPLICATE),
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
        features={T: 100},
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


# -- issue 27: three fabricated evidence sets the auditor used to pass --------------------------------------------

def test_fabricated_a_slice_of_one_row_for_a_tenant_of_thousands_is_not_scored() -> None:
    """The slice held 1 row and 1 distinct account, so rows == accounts passed; the features table says 3000."""
    ev = replace(healthy(), slices={(T, M): Slice(frozenset({"b2"}), 1, 1)}, features={T: 3000})
    report = audit(ev)
    assert not report.ok
    assert (report.figures["scored_exactly_once"], report.figures["lost"], report.figures["slices_off_features"]) == (
        0, 2, 2)
    assert report.examples["slice_off_features"][0] == (
        "r1: ('tenant-000', 'churn_risk') scores 1 accounts, the features table holds 3000 of tenant-000")


def test_a_slice_is_checked_against_the_features_table_whatever_its_size() -> None:
    assert audit(replace(healthy(), features={T: 101})).figures["slices_off_features"] == 2  # one account unscored
    assert not audit(replace(healthy(), features={})).ok  # a tenant the features table does not hold


def _supersede_r3(**r3: object) -> Evidence:
    ev = healthy()
    return replace(ev, sent=[s if s.request_id != "r3" or s.expect != EXPECT_REQUEST else replace(s, **r3)
                             for s in ev.sent])


def test_fabricated_supersession_by_another_pair_is_lost() -> None:
    for changes in ({"tenant_id": "tenant-001"}, {"model": "upsell_propensity"}):
        report = audit(_supersede_r3(**changes))
        assert not report.ok and report.figures["superseded_with_record"] == 0 and report.figures["lost"] == 1
        assert report.examples["lost"] == [
            "r3: 'superseded by r2' is no record (another pair, older, or never scored)"]


def test_fabricated_supersession_by_an_older_request_is_lost() -> None:
    report = audit(_supersede_r3(requested_at="2026-11-21T10:00:03+00:00"))  # r2 was requested at 10:00:02
    assert not report.ok and report.figures["superseded_with_record"] == 0 and report.figures["lost"] == 1


def test_supersession_follows_the_planners_order_and_chains() -> None:
    same_time = audit(_supersede_r3(requested_at="2026-11-21T10:00:02+00:00"))  # a tie: the greater id, r3, wins
    assert same_time.figures["lost"] == 1
    ev = healthy()  # r4 superseded by r3 (newer), r3 by r2 (newer), r2 scored
    ev = replace(ev, sent=[*ev.sent, sent("m6", "r4", at="2026-11-21T09:59:00+00:00")],
                 intakes=[*ev.intakes, WindowIntake("w3", {"r4": "m6"})],
                 plans=[*ev.plans, PlanRecord("w3", {"r4": "superseded by r3"})])
    report = audit(ev)
    assert report.ok and report.figures["superseded_with_record"] == 2
    offset = replace(ev, sent=[replace(s, requested_at="2026-11-21T11:00:03+01:00") if s.request_id == "r3" else s
                               for s in ev.sent])  # 10:00:03 UTC: an instant, as the planner compares it
    assert audit(offset).figures["lost"] == 2


def test_an_unknown_version_superseded_by_another_pair_is_unaccounted() -> None:
    ev = healthy()
    other = SentMessage("m8", "unknown_version", EXPECT_DEAD_LETTER, "u1", "tenant-001", M)
    ev = replace(ev, sent=[*ev.sent, other],
                 intakes=[ev.intakes[0], replace(ev.intakes[1], sources={**ev.intakes[1].sources, "u1": "m8"})],
                 plans=[ev.plans[0], replace(ev.plans[1], superseded={**ev.plans[1].superseded,
                                                                      "u1": "superseded by r2"})])
    report = audit(ev)
    assert not report.ok and report.figures["unaccounted"] == 1
    assert report.figures["hostile_superseded_with_record"] == 0


def test_fabricated_a_valid_request_dead_lettered_with_an_undocumented_reason_is_lost() -> None:
    ev = healthy()
    ev = replace(ev, sent=[*ev.sent, sent("m7", "r7")], intakes=[*ev.intakes, WindowIntake("w3", {"r7": "m7"})],
                 dlq=[*ev.dlq, DlqEntry("d7", "m7", "window closed early")])
    report = audit(ev)
    assert not report.ok
    f = report.figures
    assert (f["lost"], f["valid_dead_lettered_undocumented"], f["valid_dead_lettered_with_reason"]) == (1, 1, 0)
    assert f["dead_lettered_without_reason"] == 0  # the SOAK line keeps this figure; the entry had a reason
    assert report.examples["valid_dead_lettered_undocumented"] == [
        "r7: in the DLQ with no reason the pipeline documents"]


def test_a_plan_refusal_of_a_valid_request_is_documented_only_with_the_plans_record() -> None:
    ev = healthy()
    reason = "model churn_risk v1 not found at file:///registry/churn_risk/v1.json"
    ev = replace(ev, sent=[*ev.sent, sent("m7", "r7")], intakes=[*ev.intakes, WindowIntake("w3", {"r7": "m7"})],
                 dlq=[*ev.dlq, DlqEntry("d7", "m7", reason)])
    assert audit(ev).figures["valid_dead_lettered_undocumented"] == 1  # no plan says it refused r7
    recorded = replace(ev, plans=[*ev.plans, PlanRecord("w3", refused={"r7": reason})])
    f = audit(recorded).figures
    assert (f["lost"], f["valid_dead_lettered_with_reason"]) == (0, 1)
    carried = replace(recorded, dlq=[*ev.dlq[:-1], DlqEntry("d7", "request:r7", reason)])  # a carried-over request
    assert audit(carried).figures["valid_dead_lettered_with_reason"] == 1


def test_the_documented_reasons_are_the_ones_intake_and_the_probe_write(tmp_path: Path) -> None:
    """The list the auditor trusts (one place) matches what the pipeline really writes."""
    from warpspeed.config.workloads import WorkloadCatalog
    from warpspeed.intake.dead_letter_reasons import INTAKE, PLAN, documented_reason
    from warpspeed.models.probe import probe_models
    from warpspeed.storage.documents import LocalStorage

    body = json.dumps({"schema_version": 1, "request_id": "r1", "tenant_id": "t1", "model": M, "model_version": "v1",
                       "workload": "scoring", "requested_at": "2026-11-21T10:00:00Z"})
    (poison,) = validate_message(body, allowed_models={"scoring": frozenset({M})}, receive_count=4,
                                 max_receives=4).reasons
    workloads = WorkloadCatalog.from_dict({"workloads": {"scoring": {
        "features_table": "crm.features", "models": {M: {"flavour": "expression"}}}}})
    folder = tmp_path / M
    folder.mkdir()
    doc = {"schema": "warpspeed.model/v1", "kind": "logistic", "model": M, "intercept": 0.0}
    for version, features in (("v2", ["a", "zzz"]), ("v3", ["s"])):
        (folder / f"{version}.json").write_text(json.dumps(
            doc | {"version": version, "features": [{"name": f, "coefficient": 1.0} for f in features]}))
    (folder / "v4.json").write_text("{not json")
    found = probe_models(workloads, [("scoring", M, v) for v in ("v1", "v2", "v3", "v4")], LocalStorage(),
                         tmp_path.as_uri(), lambda table: {"a": "double", "s": "string"})
    stages = {u.version: getattr(documented_reason(u.reason), "stage", None) for u in found}
    assert stages == {"v1": PLAN, "v2": PLAN, "v3": PLAN, "v4": PLAN}
    assert getattr(documented_reason(poison), "stage", None) == INTAKE
    for undocumented in ("", "could not be validated: KeyError: x", f"{poison} | {found[0].reason}",
                         "cannot be written to the intake manifest: TypeError"):
        assert documented_reason(undocumented) is None


def test_evidence_counts_each_slice_against_its_tenants_accounts_in_the_features_table(tmp_path: Path) -> None:
    import pyarrow as pa

    from warpspeed.config.catalog import CatalogConfig
    from warpspeed.embedded.soak.evidence import read_slices
    from warpspeed.ledger.tables import FEATURES_TABLE, SCORES_TABLE, ensure_tables

    catalog = CatalogConfig.embedded(tmp_path).load()
    ensure_tables(catalog)

    def append(name: str, rows: list[dict[str, object]]) -> None:
        table = catalog.load_table(name)
        schema = table.schema().as_arrow()
        table.append(pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}).cast(schema))

    append(FEATURES_TABLE, [{"tenant_id": t, "account_id": f"{t}-{i}"} for t, n in (("t1", 3000), ("t2", 2))
                            for i in range(n)])
    append(SCORES_TABLE, [{"tenant_id": "t1", "model": M, "account_id": "t1-0", "batch_id": "b1"},
                          *({"tenant_id": "t2", "model": M, "account_id": a, "batch_id": "b2"}
                            for a in ("t2-0", "t2-1", "t2-1"))])
    slices, features = read_slices(catalog)
    assert slices == {("t1", M): Slice(frozenset({"b1"}), 1, 1), ("t2", M): Slice(frozenset({"b2"}), 3, 2)}
    assert features == {"t1": 3000, "t2": 2}
