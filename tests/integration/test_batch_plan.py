"""PlanBatchesOperator on local storage: manifests, retries, and carry-over across windows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.plan_support import W1, W2, W3, W4, WORKLOADS, Env, req
from warpspeed.exceptions import ManifestError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.window.carryover import CarryOverConflict, PendingDocument, PendingHead
from warpspeed.window.manifests import BatchManifest, window_id_for


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path / "home"))
    # these tests read and write documents in the state folder: the file:// setting
    monkeypatch.setenv("AIRFLOW__WARPSPEED__STORAGE_PREFIX", (tmp_path / "home" / "storage").as_uri())
    return Env(tmp_path)


def overflowing_window() -> list[ScoringRequest]:
    """Scoring: a high tenant and 8 normal tenants of 40 rows (2 fit in 100 rows), but 2 batches a window."""
    return ([req(f"s{i}", f"t{i}", at=W1 + timedelta(minutes=i)) for i in range(8)]
            + [req("h1", "t9", priority="high"), req("i1", "t1", workload="intent", model="intent_surge"),
               req("s0-old", "t0", at=W1 - timedelta(minutes=5))])


def test_plan_writes_one_manifest_per_batch_and_a_plan_document(env: Env) -> None:
    env.collect(W1, [req("a", "t1"), req("b", "t2", rows=70),
                     req("c", "t3", workload="intent", model="intent_surge"),
                     req("a-old", "t1", at=W1 - timedelta(minutes=1))])
    out = env.plan(W1)
    assert [o["workload"] for o in out] == ["intent", "scoring"]
    uris = [u for o in out for u in o["batch_manifest_uris"]]
    manifests = [BatchManifest.from_json(env.storage.read_text(u)) for u in uris]
    assert sorted(m.request_id for b in manifests for m in b.members) == ["a", "b", "c"]
    for m, o in ((m, o) for o in out for m in manifests if m.workload == o["workload"]):
        assert m.window_id == window_id_for(W1)
        assert m.summary_uri == env.layout(W1).summary_uri(m.batch_id)
        assert env.layout(W1).batch_uri(m.batch_id) in o["batch_manifest_uris"]
        assert m.extra["priority"] == "normal"
    doc = env.plan_doc(W1)
    assert doc["schema"] == "warpspeed.plan/v1" and doc["intake_requests"] == 4
    assert [s["request_id"] for s in doc["superseded"]] == ["a-old"]
    assert doc["carried_over"] == []
    assert doc["pending"] == {"input_uri": None, "merged_requests": 0,
                              "output_uri": env.chain.pending_uri(window_id_for(W1))}
    assert env.chain.head() == PendingHead(window_id_for(W1), env.chain.pending_uri(window_id_for(W1)))


def test_retry_rewrites_the_same_files(env: Env) -> None:
    env.collect(W1, overflowing_window())
    first = env.plan(W1)
    files = env.files()
    assert env.plan(W1) == first
    assert env.files() == files


def test_high_priority_batches_come_first_and_overflow_carries_over(env: Env) -> None:
    env.collect(W1, overflowing_window())
    out = env.plan(W1)
    scoring = next(o for o in out if o["workload"] == "scoring")["batch_manifest_uris"]
    first = BatchManifest.from_json(env.storage.read_text(scoring[0]))
    assert first.extra["priority"] == "high" and [m.request_id for m in first.members] == ["h1"]
    doc = env.plan_doc(W1)
    carried = {c["request_id"]: c for c in doc["carried_over"]}
    assert len(carried) == 8 - 2  # one high batch + one normal batch of 2 tenants ran
    assert all(c["carried"] == 1 and c["source_window_id"] == window_id_for(W1) for c in carried.values())
    # equal waits: the earliest requests went first
    assert set(env.batched(W1)) == {"h1", "i1", "s0", "s1"}
    pending = PendingDocument.from_json(env.storage.read_text(env.chain.pending_uri(window_id_for(W1))))
    assert pending.request_ids == set(carried) and pending.input_uri is None
    assert all("window full" in r for r in (pending.reasons or {}).values())


def test_next_window_merges_carried_requests_and_nothing_is_lost_or_doubled(env: Env) -> None:
    sent = overflowing_window()
    env.collect(W1, sent)
    env.plan(W1)
    w2 = [req("n1", "t20", at=W2), req("s7-new", "t7", at=W2)]  # t7 re-sends: supersedes carried s7
    env.collect(W2, w2)
    assert env.chain.resolve(window_id_for(W2)).mode == "first"
    env.plan(W2)
    doc2 = env.plan_doc(W2)
    assert doc2["pending"]["input_uri"] == env.chain.pending_uri(window_id_for(W1))
    assert doc2["pending"]["merged_requests"] == 6
    assert {s["request_id"]: s["source_window_id"] for s in doc2["superseded"]} == {"s7": window_id_for(W1)}
    # carried requests (waited 1 window) go before the new one, oldest first
    assert set(env.batched(W2)) == {"s2", "s3", "s4", "s5"}
    carried2 = {c["request_id"]: c for c in doc2["carried_over"]}
    assert set(carried2) == {"s6", "s7-new", "n1"}
    assert carried2["s6"]["carried"] == 2 and carried2["s6"]["first_window_id"] == window_id_for(W1)
    assert carried2["s7-new"]["carried"] == 2  # inherited s7's wait
    assert carried2["s7-new"]["source_window_id"] == window_id_for(W2)
    assert carried2["n1"]["carried"] == 1
    env.collect(W3, [])
    env.plan(W3)
    (high, normal) = (b for b in env.plan_doc(W3)["batches"])
    assert high["priority"] == "high" and high["carried_requests"] == 2  # waited 2 windows: promoted
    assert normal["tenants"] == ["t20"]
    everything = [*env.batched(W1), *env.batched(W2), *env.batched(W3)]
    superseded = [s["request_id"] for w in (W1, W2, W3) for s in env.plan_doc(w)["superseded"]]
    assert sorted(everything + superseded) == sorted(r.request_id for r in [*sent, *w2])
    assert env.plan_doc(W3)["carried_over"] == []
    assert env.chain.head() == PendingHead(window_id_for(W3), env.chain.pending_uri(window_id_for(W3)))


def test_retry_after_the_head_moved_plans_from_the_same_input(env: Env) -> None:
    env.collect(W1, overflowing_window())
    env.plan(W1)
    env.collect(W2, [req("n1", "t20", at=W2)])
    out = env.plan(W2)
    files = env.files()
    assert env.chain.resolve(window_id_for(W2)).mode == "retry"  # head already names W2
    assert env.plan(W2) == out  # same input (W1's pending document), same files
    assert env.files() == files


def test_crash_before_the_head_moved_is_retried_without_loss(env: Env) -> None:
    env.collect(W1, overflowing_window())
    env.plan(W1)
    head_after_w1 = env.storage.read_text(env.chain.head_uri)
    env.collect(W2, [req("n1", "t20", at=W2)])
    out = env.plan(W2)
    batches = env.batched(W2)
    env.storage.write_text(env.chain.head_uri, head_after_w1)  # as if the first attempt died before the head
    assert env.plan(W2) == out
    assert env.batched(W2) == batches
    assert env.chain.head() == PendingHead(window_id_for(W2), env.chain.pending_uri(window_id_for(W2)))


def test_replaying_an_old_window_leaves_the_chain_alone(env: Env) -> None:
    env.collect(W1, overflowing_window())
    out1 = env.plan(W1)
    env.collect(W2, [])
    env.plan(W2)
    head = env.chain.head()
    files = env.files()
    assert env.chain.resolve(window_id_for(W1)).mode == "replay"
    assert env.plan(W1) == out1  # same intake: same batches, carry-over unchanged
    assert env.chain.head() == head
    assert env.files() == files


def test_replaying_an_old_window_with_other_overflow_is_refused(env: Env) -> None:
    env.collect(W1, overflowing_window())
    env.plan(W1)
    env.collect(W2, [])
    env.plan(W2)
    env.collect(W1, [*overflowing_window(), req("late", "t30", at=W1 + timedelta(minutes=20))])
    with pytest.raises(CarryOverConflict, match="later windows already took over"):
        env.plan(W1)


def test_an_out_of_order_window_consumes_the_head(env: Env) -> None:
    env.collect(W3, overflowing_window())
    env.plan(W3)
    env.collect(W2, [])  # an older window planned later (e.g. a manual run) still takes the carry-over
    env.plan(W2)
    assert env.chain.head() == PendingHead(window_id_for(W2), env.chain.pending_uri(window_id_for(W2)))
    assert len(env.batched(W2)) == 4


def test_a_missing_pending_document_is_an_error_not_a_silent_loss(env: Env) -> None:
    env.collect(W1, overflowing_window())
    env.plan(W1)
    Path(env.chain.pending_uri(window_id_for(W1)).removeprefix("file://")).unlink()
    env.collect(W2, [])
    with pytest.raises(ManifestError, match="holds carried-over requests"):
        env.plan(W2)


def test_empty_window_with_nothing_pending_plans_nothing(env: Env) -> None:
    env.collect(W4, [])
    assert env.plan(W4) == []
    assert env.plan_doc(W4)["batches"] == []


def test_the_plan_task_routes_each_batch_and_writes_its_engine(env: Env) -> None:
    env.workloads_file.write_text(WORKLOADS.replace("max_batches_per_window: 5}",
                                                    "max_batches_per_window: 5, single_node_max_rows: 50}"))
    env.collect(W1, [req("small", "t1", workload="intent", model="intent_surge", rows=50),
                     req("big", "t2", workload="intent", model="intent_surge", rows=60)])
    (out,) = env.plan(W1)
    engines = {m.members[0].request_id: m.engine
               for m in (BatchManifest.from_json(env.storage.read_text(u)) for u in out["batch_manifest_uris"])}
    assert engines == {"small": "arrow", "big": "spark"}
    assert sorted(b["engine"] for b in env.plan_doc(W1)["batches"]) == ["arrow", "spark"]
