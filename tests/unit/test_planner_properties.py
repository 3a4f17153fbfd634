"""Property-based tests of the batch planner (hypothesis)."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from warpspeed.config.workloads import PlanningSettings
from warpspeed.intake.schema import PRIORITY_RANK, ScoringRequest
from warpspeed.planning.batches import PendingRequest, WindowPlan, batch_id_for, plan_window, request_rows

T0 = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
FEWER = 5 if os.environ.get("WARPSPEED_FAST_LANE") == "1" else 1
"""``make unit`` (the fast lane) draws a fifth of the examples; ``make test`` draws them all."""
WORKLOADS = ("scoring", "intent")
LANES = [
    (("high",), ("normal",), ("low",)),
    (("high",), ("normal", "low")),
    (("high", "normal", "low"),),
    (("high", "normal"), ("low",)),
]


@st.composite
def request_docs(draw: st.DrawFn) -> dict[str, object]:
    return {
        "tenant_id": draw(st.sampled_from([f"t{i}" for i in range(12)])),
        "model": draw(st.sampled_from(["churn_risk", "upsell_propensity", "intent_surge"])),
        "workload": draw(st.sampled_from([*WORKLOADS, "retired"]) if draw(st.integers(0, 20)) == 0
                         else st.sampled_from(WORKLOADS)),
        "priority": draw(st.sampled_from(list(PRIORITY_RANK))),
        "estimated_accounts": draw(st.one_of(st.integers(0, 60), st.integers(0, 400))),
        "minute": draw(st.integers(0, 5)),
        "offset": draw(st.sampled_from([0, 2, -5])),
    }


def to_request(i: int, doc: dict[str, object], prefix: str = "r") -> ScoringRequest:
    offset = timedelta(hours=int(doc["offset"]))  # type: ignore[call-overload]
    at = (T0 + timedelta(minutes=int(doc["minute"]))).astimezone(timezone(offset))  # type: ignore[call-overload]
    return ScoringRequest(
        request_id=f"{prefix}{i:04d}", tenant_id=str(doc["tenant_id"]), model=str(doc["model"]),
        model_version="v1", workload=str(doc["workload"]), requested_at=at.isoformat(),
        priority=str(doc["priority"]), estimated_accounts=int(doc["estimated_accounts"]),  # type: ignore[call-overload]
    )


@st.composite
def planning_settings(draw: st.DrawFn) -> dict[str, PlanningSettings]:
    def one() -> PlanningSettings:
        return PlanningSettings(
            rows_cap=draw(st.integers(1, 300)),
            max_tenants_per_batch=draw(st.integers(1, 5)),
            max_batches_per_window=draw(st.integers(1, 6)),
            priority_lanes=draw(st.sampled_from(LANES)),
            promote_after_windows=draw(st.integers(1, 3)),
        )

    return {w: one() for w in WORKLOADS}


@st.composite
def window_inputs(
    draw: st.DrawFn,
) -> tuple[list[ScoringRequest], list[PendingRequest], dict[str, PlanningSettings]]:
    requests = [to_request(i, d) for i, d in enumerate(draw(st.lists(request_docs(), max_size=60)))]
    pending = [
        PendingRequest(to_request(i, d, "p"), f"w0{draw(st.integers(0, 3))}", f"w0{draw(st.integers(0, 3))}",
                       draw(st.integers(1, 6)))
        for i, d in enumerate(draw(st.lists(request_docs(), max_size=15)))
    ]
    return requests, pending, draw(planning_settings())


def all_ids(plan: WindowPlan) -> list[str]:
    return ([m.request_id for b in plan.batches for m in b.members]
            + [s.request.request_id for s in plan.superseded]
            + [s.request.request_id for s in plan.carried_over])


@settings(max_examples=300 // FEWER, deadline=None)
@given(window_inputs())
def test_every_request_ends_in_exactly_one_place(data: tuple) -> None:
    requests, pending, planning = data
    plan = plan_window("w1", requests, planning, pending)
    assert Counter(all_ids(plan)) == Counter(r.request_id for r in [*requests, *(p.request for p in pending)])
    for s in plan.carried_over:
        assert s.reason and s.carried >= 1
    for s in plan.superseded:
        assert s.reason.startswith("superseded by ")


@settings(max_examples=300 // FEWER, deadline=None)
@given(window_inputs())
def test_batches_respect_caps_workloads_and_the_window_limit(data: tuple) -> None:
    requests, pending, planning = data
    plan = plan_window("w1", requests, planning, pending)
    for b in plan.batches:
        cfg = planning[b.workload]
        assert b.members
        assert {m.workload for m in b.members} == {b.workload}
        assert b.estimated_rows == sum(request_rows(m) for m in b.members)
        assert b.estimated_rows <= cfg.rows_cap or len(b.tenants) == 1
        assert len(b.tenants) <= cfg.max_tenants_per_batch
    for workload, n in Counter(b.workload for b in plan.batches).items():
        assert n <= planning[workload].max_batches_per_window
    # a tenant's requests of one workload are never spread over two batches of a window
    homes = Counter((b.workload, t) for b in plan.batches for t in b.tenants)
    assert max(homes.values(), default=1) == 1


@settings(max_examples=300 // FEWER, deadline=None)
@given(window_inputs())
def test_only_the_latest_request_per_pair_survives(data: tuple) -> None:
    requests, pending, planning = data
    plan = plan_window("w1", requests, planning, pending)
    live = [m for b in plan.batches for m in b.members] + [s.request for s in plan.carried_over]
    pairs = Counter((r.workload, r.tenant_id, r.model) for r in live)
    assert max(pairs.values(), default=1) == 1
    by_id = {r.request_id: r for r in live}
    for s in plan.superseded:
        winner = by_id[s.reason.removeprefix("superseded by ")]
        assert (winner.workload, winner.tenant_id, winner.model) == (
            s.request.workload, s.request.tenant_id, s.request.model)
        assert (winner.requested_at_dt, winner.request_id) > (s.request.requested_at_dt, s.request.request_id)


@settings(max_examples=300 // FEWER, deadline=None)
@given(window_inputs())
def test_lanes_are_submitted_in_order_and_never_displaced(data: tuple) -> None:
    requests, pending, planning = data
    plan = plan_window("w1", requests, planning, pending)
    lanes = [b.lane for b in plan.batches]
    assert lanes == sorted(lanes)
    for b in plan.batches:
        assert b.priority == planning[b.workload].lane_label(b.lane)
    # a request of a never-aged high lane is carried over only if its workload ran no lower-lane batch
    for s in plan.carried_over:
        cfg = planning.get(s.request.workload)
        if cfg is None or s.carried != 1 or cfg.lane_of(s.request.priority) != 0:
            continue
        assert all(b.lane == 0 for b in plan.batches if b.workload == s.request.workload)
        ran = [b for b in plan.batches if b.workload == s.request.workload]
        assert len(ran) == cfg.max_batches_per_window


@settings(max_examples=200 // FEWER, deadline=None)
@given(window_inputs(), st.randoms(use_true_random=False))
def test_plans_are_deterministic_and_ids_follow_members(data: tuple, rnd) -> None:  # type: ignore[no-untyped-def]
    requests, pending, planning = data
    plan = plan_window("w1", requests, planning, pending)
    shuffled, shuffled_pending = requests[:], pending[:]
    rnd.shuffle(shuffled)
    rnd.shuffle(shuffled_pending)
    assert plan_window("w1", shuffled, planning, shuffled_pending) == plan
    ids = [b.batch_id for b in plan.batches]
    assert len(set(ids)) == len(ids)
    for b in plan.batches:
        assert b.batch_id == batch_id_for("w1", b.workload, (m.request_id for m in b.members))
    other = plan_window("w2", requests, planning, pending)
    assert not set(ids) & {b.batch_id for b in other.batches}


@given(st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=8),
       st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=8))
def test_batch_ids_differ_when_members_differ(a: set[str], b: set[str]) -> None:
    same = batch_id_for("w1", "scoring", sorted(a)) == batch_id_for("w1", "scoring", sorted(b))
    assert same == (a == b)


@settings(max_examples=60 // FEWER, deadline=None)
@given(st.lists(st.lists(request_docs(), max_size=25), min_size=2, max_size=8), planning_settings())
def test_a_chain_of_windows_never_loses_or_doubles_a_request(windows: list, planning: dict) -> None:
    pending: tuple[PendingRequest, ...] = ()
    placed: Counter[str] = Counter()
    sent: set[str] = set()
    for w, docs in enumerate(windows):
        requests = [to_request(i, d, f"w{w:02d}-") for i, d in enumerate(docs)]
        sent |= {r.request_id for r in requests}
        plan = plan_window(f"w{w:02d}", requests, planning, pending)
        placed.update(m.request_id for b in plan.batches for m in b.members)
        placed.update(s.request.request_id for s in plan.superseded)
        pending = plan.pending
        for p in pending:
            assert p.source_window_id == p.request.request_id.split("-")[0]
    placed.update(p.request.request_id for p in pending)
    assert placed == Counter(sent)
