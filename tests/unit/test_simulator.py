from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from warpspeed.cli import main as cli_main
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.ledger.cost import S3RequestModel
from warpspeed.ledger.prices import PriceTable
from warpspeed.sim.engine import SimAssumptions, simulate, simulate_serverless
from warpspeed.sim.report import format_assumptions
from warpspeed.sim.traces import Trace, TraceRequest


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


@pytest.fixture(scope="module")
def small_result(prices: PriceTable):  # type: ignore[no-untyped-def]
    return simulate(Trace.generate(days=0.5, seed=3), prices)


def test_generated_trace_is_case_study_shaped_and_deterministic() -> None:
    trace = Trace.generate(days=0.25, seed=11)
    assert trace.windows == 12
    per_window = Counter(r.window for r in trace.requests)
    assert all(1500 <= n <= 2000 for n in per_window.values())
    pairs = Counter((r.window, r.tenant_id, r.model) for r in trace.requests)
    assert max(pairs.values()) == 1  # distinct pairs: nothing supersedes anything
    assert 200 <= len({r.tenant_id for r in trace.requests}) <= 400
    assert trace == Trace.generate(days=0.25, seed=11)
    with pytest.raises(WarpSpeedConfigError, match="requests_per_window"):
        Trace.generate(days=0.1, tenants=10, requests_per_window=(10, 100))


def test_serverless_bills_a_minute_per_worker_at_least(prices: PriceTable) -> None:
    a = SimAssumptions(app_overhead_s=1, sl_startup_billed_s=0)
    trace = Trace((TraceRequest(0, "t", "churn_risk", "scoring", 100),), windows=1)
    res = simulate_serverless(trace, prices, a)
    hours = 60 / 3600  # tiny job: billed the one-minute minimum, driver + one executor
    assert res.serverless_vcpu_hours == pytest.approx(hours * (a.sl_driver_vcpu + a.sl_executor_vcpu))
    assert res.serverless_gb_hours == pytest.approx(hours * (a.sl_driver_gb + a.sl_executor_gb))
    assert res.cost.serverless_usd == pytest.approx(
        res.serverless_vcpu_hours * 0.052624 + res.serverless_gb_hours * 0.0057785)


def test_case_study_trace_reproduces_the_order_of_the_saving(small_result) -> None:  # type: ignore[no-untyped-def]
    sl = small_result.results["serverless"].monthly_total
    ws = small_result.results["warpspeed"].monthly_total
    cpr = small_result.results["cluster_per_request"].monthly_total
    # the case study: ~$22,000 -> ~$2,000 a month
    assert 10_000 < sl < 50_000
    assert 500 < ws < 4_000
    assert 5 < small_result.ratio_vs_serverless() < 50
    assert cpr > sl  # a cluster per request pays provisioning every time
    warp = small_result.results["warpspeed"]
    assert warp.spark_apps == small_result.batches < small_result.requests / 20
    assert warp.instance_hours_spot > 0 and warp.monthly.serverless_usd == 0


def test_more_requests_cost_warpspeed_far_less_than_linearly(prices: PriceTable) -> None:
    low = simulate(Trace.generate(days=0.25, requests_per_window=(500, 500), seed=1), prices)
    high = simulate(Trace.generate(days=0.25, requests_per_window=(2000, 2000), seed=1), prices)
    sl_growth = high.results["serverless"].monthly_total / low.results["serverless"].monthly_total
    ws_growth = high.results["warpspeed"].monthly_total / low.results["warpspeed"].monthly_total
    assert sl_growth > 3 and ws_growth < 2


def test_file_trace_round_trips(tmp_path: Path, prices: PriceTable) -> None:
    trace = Trace.generate(days=0.1, requests_per_window=(50, 80), tenants=60, seed=5)
    path = tmp_path / "trace.csv"
    trace.write_csv(path)
    again = Trace.from_file(path)
    assert again.windows == trace.windows
    assert sorted(again.requests, key=repr) == sorted(trace.requests, key=repr)
    jsonl = tmp_path / "trace.jsonl"
    jsonl.write_text("\n".join(json.dumps({"requested_at": "2026-01-05T10:07:00Z", "tenant_id": "t",
                                           "model": "churn_risk", "workload": "scoring",
                                           "estimated_accounts": 10 * i}) for i in range(3)))
    assert Trace.from_file(jsonl).windows == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("requested_at,tenant_id\n2026-01-05T10:00:00Z,t\n")
    with pytest.raises(WarpSpeedConfigError, match="request 1"):
        Trace.from_file(bad)


def test_assumptions_are_validated_and_printed(small_result) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WarpSpeedConfigError, match="ws_task_utilization"):
        SimAssumptions(ws_task_utilization=0)
    with pytest.raises(WarpSpeedConfigError, match="app_overhead_s"):
        SimAssumptions(app_overhead_s=-1)
    text = format_assumptions(small_result)
    assert "rows_per_vcpu_second = 1500.0  # Accounts scored per vCPU-second" in text
    assert "aws-us-east-1" in text


def test_cli_prints_table_and_writes_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart, out = tmp_path / "sim.png", tmp_path / "sim.json"
    code = cli_main(["simulate", "--days", "0.25", "--chart", str(chart), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "EMR Serverless, one job per request" in printed and "sim_cost_ratio_vs_serverless" in printed
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(chart) as img:
        assert img.size[0] > 800 and len(img.convert("RGB").getcolors(1_000_000) or []) > 20
    data = json.loads(out.read_text())
    assert set(data["monthly_usd"]) == {"serverless", "cluster_per_request", "warpspeed"}
    assert cli_main(["simulate", "--trace", str(tmp_path / "missing.csv"), "--chart", str(chart)]) == 2


def test_the_simulator_estimates_s3_requests_as_the_ledger_does() -> None:
    a = SimAssumptions()
    assert a.s3_requests(3, 7, maintained=True) == S3RequestModel().requests(3, 7)
    assert a.s3_requests(3, 3, maintained=False)[0] == 3 * (a.s3_gets_per_app_unmaintained + a.s3_gets_per_slice)
