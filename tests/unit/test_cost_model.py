from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.ledger.cost import (
    BASIS_EMR,
    BASIS_RUNTIME,
    InstanceUsage,
    attribute_to_tenants,
    batch_cost,
    instance_cost,
    split_micros,
    usage_from_emr_instances,
    usage_from_runtime,
)
from warpspeed.ledger.prices import FleetShape, PriceTable

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_bundled_table_has_published_serverless_rates(prices: PriceTable) -> None:
    assert prices.serverless.vcpu_hour == 0.052624
    assert prices.serverless.gb_hour == 0.0057785
    assert prices.serverless.minimum_billed_seconds == 60
    assert prices.s3.get_per_1000 == 0.0004 and prices.s3.put_per_1000 == 0.005
    assert prices.reference_cluster, "the embedded stack needs a reference cluster"


def test_spot_discounts_ec2_but_not_the_emr_fee(prices: PriceTable) -> None:
    od = prices.ec2_hourly("m5.xlarge", "ON_DEMAND")
    assert od == 0.192
    assert prices.ec2_hourly("m5.xlarge", "SPOT") == pytest.approx(0.192 * 0.35)
    on_demand = instance_cost([InstanceUsage("m5.xlarge", "ON_DEMAND", 10)], prices)
    spot = instance_cost([InstanceUsage("m5.xlarge", "SPOT", 10)], prices)
    assert spot.emr_fee_usd == on_demand.emr_fee_usd == pytest.approx(0.48)
    assert spot.ec2_usd == pytest.approx(0.672)
    assert prices.ec2_hourly("m5.xlarge", "RESERVED") == pytest.approx(0.192 * (1 - prices.reserved_discount))


def test_serverless_cost_uses_both_rates(prices: PriceTable) -> None:
    # 4 vCPU, 16 GB for one hour
    assert prices.serverless_cost(4, 16) == pytest.approx(4 * 0.052624 + 16 * 0.0057785)


def test_usage_from_runtime_scales_the_reference_cluster() -> None:
    shape = (FleetShape("master", "m7g.xlarge", 1), FleetShape("core", "r7g.xlarge", 2),
             FleetShape("task", "m7g.2xlarge", 4, "SPOT"))
    usage = usage_from_runtime(1800, shape)
    assert {(u.instance_type, u.market): u.instance_hours for u in usage} == {
        ("m7g.xlarge", "ON_DEMAND"): 0.5, ("r7g.xlarge", "ON_DEMAND"): 1.0, ("m7g.2xlarge", "SPOT"): 2.0}
    assert usage_from_runtime(-5, shape) == ()


def test_usage_from_emr_instances_clips_to_the_batch() -> None:
    start, end = T0, T0 + timedelta(minutes=30)
    instances = [
        # running since before the batch: counts 30 min
        {"InstanceType": "m5.xlarge", "Market": "ON_DEMAND",
         "Status": {"Timeline": {"CreationDateTime": T0 - timedelta(hours=3)}}},
        # Spot node joined 10 min in, reclaimed 20 min in: counts 10 min
        {"InstanceType": "m5.2xlarge", "Market": "SPOT",
         "Status": {"Timeline": {"CreationDateTime": T0 + timedelta(minutes=10),
                                 "EndDateTime": (T0 + timedelta(minutes=20)).isoformat()}}},
        # ended before the batch: no usage
        {"InstanceType": "m5.2xlarge", "Market": "SPOT",
         "Status": {"Timeline": {"CreationDateTime": T0 - timedelta(hours=2),
                                 "EndDateTime": T0 - timedelta(hours=1)}}},
    ]
    usage = {(u.instance_type, u.market): u.instance_hours
             for u in usage_from_emr_instances(instances, start, end)}
    assert usage == pytest.approx({("m5.xlarge", "ON_DEMAND"): 0.5, ("m5.2xlarge", "SPOT"): 1 / 6})


def test_batch_cost_from_runtime_attributes_by_rows(prices: PriceTable) -> None:
    cost = batch_cost(run_seconds=3600, rows_by_tenant={"a": 3000, "b": 1000},
                      requests_by_tenant={"a": 1, "b": 1}, slices=2, prices=prices)
    assert cost.basis == BASIS_RUNTIME and cost.price_table == prices.id
    expected_compute = sum(
        f.count * (prices.ec2_hourly(f.instance_type, f.market) + prices.emr_fee_hourly(f.instance_type))
        for f in prices.reference_cluster)
    assert cost.breakdown.ec2_usd + cost.breakdown.emr_fee_usd == pytest.approx(expected_compute)
    assert cost.breakdown.s3_usd > 0
    shares = {t.tenant_id: t.cost_usd for t in cost.tenants}
    assert sum(shares.values()) == pytest.approx(cost.breakdown.total_usd, abs=1e-6)
    assert shares["a"] == pytest.approx(3 * shares["b"], rel=1e-4)
    assert 0 < cost.spot_share < 1


def test_batch_cost_from_emr_instances(prices: PriceTable) -> None:
    instances = [{"InstanceType": "m5.xlarge", "Market": "SPOT",
                  "Status": {"Timeline": {"CreationDateTime": T0}}}]
    cost = batch_cost(run_seconds=0, rows_by_tenant={"a": 1}, requests_by_tenant={"a": 1}, slices=1,
                      prices=prices, instances=instances, started=T0, finished=T0 + timedelta(hours=2))
    assert cost.basis == BASIS_EMR and cost.spot_share == 1.0 and cost.spot_hours == pytest.approx(2)
    with pytest.raises(WarpSpeedConfigError, match="started and finished"):
        batch_cost(run_seconds=0, rows_by_tenant={}, requests_by_tenant={}, slices=0, prices=prices,
                   instances=instances)


def test_failed_batch_is_shared_by_requests() -> None:
    shares = attribute_to_tenants(1.0, {}, {"a": 1, "b": 3})
    assert [(t.tenant_id, t.cost_usd) for t in shares] == [("a", 0.25), ("b", 0.75)]


@given(total=st.floats(min_value=0, max_value=1e5, allow_nan=False),
       weights=st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 10**9),
                               min_size=1, max_size=30))
def test_split_micros_always_adds_up(total: float, weights: dict[str, int]) -> None:
    shares = split_micros(total, {k: float(v) for k, v in weights.items()})
    assert set(shares) == set(weights)
    assert sum(shares.values()) == round(total * 1_000_000)
    assert all(v >= 0 for v in shares.values())


@pytest.mark.parametrize(("patch", "message"), [
    ({"spot_discount": 1.2}, "spot_discount"),
    ({"instances": {}}, "instances"),
    ({"instances": {"x.large": {"vcpu": 0, "memory_gib": 1, "on_demand": 1, "emr_fee": 0}}},
     "instances.x.large.vcpu"),
    ({"reference_cluster": [{"role": "task", "instance_type": "nope", "count": 1, "market": "SPOT"}]},
     "no instance type 'nope'"),
    ({"reference_cluster": [{"role": "task", "instance_type": "m5.xlarge", "count": 1, "market": "CHEAP"}]},
     "market"),
    ({"emr_serverless": {"vcpu_hour": -1}}, "emr_serverless.vcpu_hour"),
])
def test_invalid_price_tables_name_the_field(patch: dict, message: str) -> None:
    import yaml

    from warpspeed.ledger.prices import DEFAULT_PRICE_TABLE

    doc = yaml.safe_load(DEFAULT_PRICE_TABLE.read_text()) | patch
    with pytest.raises(WarpSpeedConfigError, match=message):
        PriceTable.from_dict(doc)


def test_missing_price_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="does not exist"):
        PriceTable.load(tmp_path / "nope.yaml")
