"""Simulate three strategies on a trace and price a month of each through :mod:`warpspeed.ledger.cost`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from warpspeed.config.workloads import PlanningSettings, WorkloadCatalog
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.cost import CostBreakdown, InstanceUsage, S3RequestModel, instance_cost
from warpspeed.ledger.prices import PriceTable
from warpspeed.planning.batches import PendingRequest, plan_window
from warpspeed.sim.traces import TRACE_EPOCH, Trace

DAYS_PER_MONTH = 30.4
STRATEGIES = ("serverless", "cluster_per_request", "warpspeed")
LABELS = {
    "serverless": "EMR Serverless, one job per request",
    "cluster_per_request": "EMR on EC2, one cluster per request",
    "warpspeed": "Warp Speed: 30-min batches, reused clusters, Spot",
}

@dataclass(frozen=True)
class SimAssumptions:
    """Every number the simulation assumes besides prices (defaults and the reasons for them)."""

    rows_per_vcpu_second: float = 1500.0
    """Accounts scored per vCPU-second (feature read + join + model + Iceberg write)."""
    app_overhead_s: float = 45.0
    """Fixed cost of one Spark application: JVM, SparkContext, catalog and table load, commit."""
    # EMR Serverless, one job per request
    sl_driver_vcpu: int = 2
    sl_driver_gb: int = 8
    sl_executor_vcpu: int = 4
    sl_executor_gb: int = 16
    sl_max_executors: int = 20
    sl_target_work_s: float = 300.0
    """Executors per job are sized to finish the scoring work in about this long."""
    sl_startup_billed_s: float = 20.0
    """Worker start-up that is billed before the job's own work begins."""
    # EMR on EC2, one cluster per request
    cpr_master_type: str = "m7g.xlarge"
    cpr_core_type: str = "r7g.xlarge"
    cpr_min_core: int = 2
    cpr_max_core: int = 10
    cpr_provision_s: float = 420.0
    """EC2 start, EMR bootstrap and applications: billed, before the step starts."""
    cpr_teardown_s: float = 60.0
    # Warp Speed
    ws_master_type: str = "m7g.xlarge"
    ws_core_type: str = "r7g.xlarge"
    ws_core_count: int = 2
    ws_core_market: str = "RESERVED"
    """Master and core are always on and covered by Reserved Instances, as in the case study."""
    ws_task_type: str = "m7g.2xlarge"
    ws_task_utilization: float = 0.7
    """Share of task-fleet vCPU-seconds that does useful work (scaling steps, skew)."""
    ws_step_overhead_s: float = 30.0
    """spark-submit of one batch on a warm cluster (no cluster start, JVMs only)."""
    ws_step_vcpu: int = 4
    """vCPUs a batch's driver and minimum executors hold during that overhead."""
    ws_scale_lag_s: float = 300.0
    """Task nodes stay this long after a window's work (managed scaling cool-down)."""
    ws_spot_fallback_share: float = 0.05
    """Share of task-fleet hours that ran on on-demand after the Spot timeout."""
    ws_clusters_per_workload: int = 1
    ws_maintenance_hours_per_day: float = 1.0
    """Daily Iceberg maintenance on a master + core cluster of the maintenance profile."""
    # S3 requests per Spark application / per (tenant, model) slice, and storage
    s3_gets_per_app_unmaintained: float = 5000.0
    """Without compaction or snapshot expiry: many small feature files (HEAD + footer + column
    GETs each) and unmerged manifests to plan over."""
    s3_gets_per_app_maintained: float = 150.0
    """This and the three per-app/per-slice figures below are the ledger's :class:`S3RequestModel` defaults."""
    s3_gets_per_slice: float = 12.0
    s3_puts_per_app: float = 6.0
    s3_puts_per_slice: float = 2.0
    bytes_per_score_row: float = 40.0
    unmaintained_retained_days: float = 30.0
    """Snapshots never expire: a month of rewritten score files stays in S3."""
    maintained_retained_days: float = 1.0
    sqs_requests_per_request: float = 3.0
    """Send, receive and delete of each request's message."""
    orchestration_monthly_usd: float = 360.0
    """Airflow itself (an MWAA mw1.small at $0.49/h or a self-hosted equivalent), the same for
    every strategy."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise WarpSpeedConfigError(f"simulation assumption {f.name} must be >= 0, got {value}")
        if not 0 < self.ws_task_utilization <= 1:
            raise WarpSpeedConfigError("simulation assumption ws_task_utilization must be in (0, 1]")
        if not 0 <= self.ws_spot_fallback_share <= 1:
            raise WarpSpeedConfigError("simulation assumption ws_spot_fallback_share must be in [0, 1]")

    def s3_requests(self, apps: float, slices: float, *, maintained: bool) -> tuple[float, float]:
        """Return (GET-class, PUT-class) S3 requests of ``apps`` applications over ``slices`` slices.

        The ledger's estimate (:meth:`S3RequestModel.requests`) with these figures; without
        maintenance an application reads many more small files and manifests.
        """
        gets_per_app = self.s3_gets_per_app_maintained if maintained else self.s3_gets_per_app_unmaintained
        model = S3RequestModel(gets_per_app=gets_per_app, puts_per_app=self.s3_puts_per_app,
                               gets_per_slice=self.s3_gets_per_slice, puts_per_slice=self.s3_puts_per_slice)
        return model.requests(apps, slices)


@dataclass
class StrategyResult:
    """A strategy's usage and cost over the trace, and scaled to a month."""

    strategy: str
    spark_apps: int = 0
    clusters_launched: int = 0
    instance_hours_on_demand: float = 0.0
    instance_hours_spot: float = 0.0
    serverless_vcpu_hours: float = 0.0
    serverless_gb_hours: float = 0.0
    s3_gets: float = 0.0
    s3_puts: float = 0.0
    cost: CostBreakdown = field(default_factory=CostBreakdown)
    monthly: CostBreakdown = field(default_factory=CostBreakdown)

    @property
    def monthly_total(self) -> float:
        """Return the month's total in dollars."""
        return self.monthly.total_usd


@dataclass(frozen=True)
class SimulationResult:
    """Every strategy's result for one trace."""

    trace_source: str
    trace_days: float
    requests: int
    rows: int
    windows: int
    batches: int
    results: dict[str, StrategyResult]
    assumptions: SimAssumptions
    price_table: str

    def ratio_vs_serverless(self, strategy: str = "warpspeed") -> float:
        """Return serverless monthly cost / ``strategy`` monthly cost."""
        return self.results["serverless"].monthly_total / self.results[strategy].monthly_total

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly form."""
        return {
            "trace": {"source": self.trace_source, "days": self.trace_days, "requests": self.requests,
                      "rows": self.rows, "windows": self.windows, "warpspeed_batches": self.batches},
            "price_table": self.price_table,
            "monthly_usd": {k: round(v.monthly_total, 2) for k, v in self.results.items()},
            "ratio_serverless_to_warpspeed": round(self.ratio_vs_serverless(), 2),
            "results": {k: asdict(v) | {"monthly_total_usd": v.monthly_total}
                        for k, v in self.results.items()},
            "assumptions": asdict(self.assumptions),
        }


def _scale(cost: CostBreakdown, factor: float) -> CostBreakdown:
    return CostBreakdown(*(getattr(cost, f.name) * factor for f in fields(CostBreakdown)))


def _storage_cost(rows_per_day: float, retained_days: float, a: SimAssumptions, prices: PriceTable,
                  days: float) -> float:
    gb = rows_per_day * retained_days * a.bytes_per_score_row / 1e9
    return gb * prices.s3.storage_gb_month * days / DAYS_PER_MONTH


def simulate_serverless(trace: Trace, prices: PriceTable, a: SimAssumptions) -> StrategyResult:
    """One EMR Serverless job per request."""
    res = StrategyResult("serverless")
    accounts = np.array([r.accounts for r in trace.requests], dtype=float)
    work = accounts / a.rows_per_vcpu_second
    executors = np.clip(np.ceil(work / (a.sl_target_work_s * a.sl_executor_vcpu)), 1, a.sl_max_executors)
    seconds = a.sl_startup_billed_s + a.app_overhead_s + work / (executors * a.sl_executor_vcpu)
    billed_h = np.maximum(seconds, prices.serverless.minimum_billed_seconds) / 3600
    res.spark_apps = len(accounts)
    res.serverless_vcpu_hours = float(np.sum(billed_h * (a.sl_driver_vcpu + executors * a.sl_executor_vcpu)))
    res.serverless_gb_hours = float(np.sum(billed_h * (a.sl_driver_gb + executors * a.sl_executor_gb)))
    res.s3_gets, res.s3_puts = a.s3_requests(res.spark_apps, res.spark_apps, maintained=False)  # a slice per app
    s3 = prices.s3.requests_cost(res.s3_gets, res.s3_puts) + _storage_cost(
        float(accounts.sum()) / trace.days, a.unmaintained_retained_days, a, prices, trace.days)
    res.cost = CostBreakdown(
        serverless_usd=prices.serverless_cost(res.serverless_vcpu_hours, res.serverless_gb_hours),
        s3_usd=s3, other_usd=_other_cost(trace, a, prices))
    return res


def _sqs_cost(requests: int, a: SimAssumptions, prices: PriceTable) -> float:
    return requests * a.sqs_requests_per_request / 1e6 * prices.sqs_per_million_requests


def _other_cost(trace: Trace, a: SimAssumptions, prices: PriceTable) -> float:
    """Return SQS requests plus orchestration for the trace's span."""
    orchestration = a.orchestration_monthly_usd * trace.days / DAYS_PER_MONTH
    return _sqs_cost(len(trace.requests), a, prices) + orchestration


def simulate_cluster_per_request(trace: Trace, prices: PriceTable, a: SimAssumptions) -> StrategyResult:
    """One EMR on EC2 cluster per request (on-demand master and core)."""
    res = StrategyResult("cluster_per_request")
    core = prices.instance(a.cpr_core_type)
    accounts = np.array([r.accounts for r in trace.requests], dtype=float)
    work = accounts / a.rows_per_vcpu_second
    cores = np.clip(np.ceil(work / (a.sl_target_work_s * core.vcpu)), a.cpr_min_core, a.cpr_max_core)
    hours = (a.cpr_provision_s + a.app_overhead_s + work / (cores * core.vcpu) + a.cpr_teardown_s) / 3600
    master_h, core_h = float(hours.sum()), float((hours * cores).sum())
    res.spark_apps = res.clusters_launched = len(accounts)
    res.instance_hours_on_demand = master_h + core_h
    machines = instance_cost([InstanceUsage(a.cpr_master_type, "ON_DEMAND", master_h),
                              InstanceUsage(a.cpr_core_type, "ON_DEMAND", core_h)], prices)
    res.s3_gets, res.s3_puts = a.s3_requests(res.spark_apps, res.spark_apps, maintained=False)  # a slice per app
    s3 = prices.s3.requests_cost(res.s3_gets, res.s3_puts) + _storage_cost(
        float(accounts.sum()) / trace.days, a.unmaintained_retained_days, a, prices, trace.days)
    res.cost = machines + CostBreakdown(s3_usd=s3, other_usd=_other_cost(trace, a, prices))
    return res


def simulate_warpspeed(
    trace: Trace, prices: PriceTable, a: SimAssumptions, planning: Mapping[str, PlanningSettings]
) -> tuple[StrategyResult, int]:
    """Warp Speed: plan each window with the real planner, run batches on reused clusters."""
    res = StrategyResult("warpspeed")
    task = prices.instance(a.ws_task_type)
    pending: tuple[PendingRequest, ...] = ()
    batches = slices = 0
    task_hours = 0.0
    workloads_seen: set[str] = set()
    for w, reqs in trace.by_window():
        start = TRACE_EPOCH + timedelta(minutes=w * trace.window_minutes)
        window_id = start.strftime("%Y%m%dT%H%MZ")
        requests = [
            ScoringRequest(request_id=f"{w}-{i}", tenant_id=r.tenant_id, model=r.model, model_version="v1",
                           workload=r.workload, requested_at=start.isoformat(), estimated_accounts=r.accounts)
            for i, r in enumerate(reqs)
        ]
        plan = plan_window(window_id, requests, planning, pending)
        pending = plan.pending
        vcpu_s = 0.0
        for batch in plan.batches:
            workloads_seen.add(batch.workload)
            vcpu_s += batch.estimated_rows / a.rows_per_vcpu_second + a.ws_step_overhead_s * a.ws_step_vcpu
            slices += len({(m.tenant_id, m.model) for m in batch.members})
        batches += len(plan.batches)
        if vcpu_s:
            busy_h = vcpu_s / (task.vcpu * a.ws_task_utilization) / 3600
            nodes = math.ceil(vcpu_s / (task.vcpu * a.ws_task_utilization * trace.window_minutes * 60 * 0.5))
            task_hours += busy_h + nodes * a.ws_scale_lag_s / 3600
    clusters = max(1, len(workloads_seen)) * a.ws_clusters_per_workload
    always_on_h = trace.days * 24 * clusters
    master_h, core_h = always_on_h, always_on_h * a.ws_core_count
    maint_h = trace.days * a.ws_maintenance_hours_per_day
    spot_h = task_hours * (1 - a.ws_spot_fallback_share)
    fallback_h = task_hours * a.ws_spot_fallback_share
    machines = instance_cost([
        InstanceUsage(a.ws_master_type, a.ws_core_market, master_h),
        InstanceUsage(a.ws_core_type, a.ws_core_market, core_h),
        InstanceUsage(a.ws_task_type, "SPOT", spot_h),
        InstanceUsage(a.ws_task_type, "ON_DEMAND", fallback_h),
        InstanceUsage(a.ws_master_type, "ON_DEMAND", maint_h),
        InstanceUsage(a.ws_core_type, "ON_DEMAND", maint_h * a.ws_core_count),
    ], prices)
    res.spark_apps = batches
    res.clusters_launched = clusters
    res.instance_hours_on_demand = master_h + core_h + fallback_h + maint_h * (1 + a.ws_core_count)
    res.instance_hours_spot = spot_h
    res.s3_gets, res.s3_puts = a.s3_requests(batches, slices, maintained=True)
    rows = sum(r.accounts for r in trace.requests)
    s3 = prices.s3.requests_cost(res.s3_gets, res.s3_puts) + _storage_cost(
        rows / trace.days, a.maintained_retained_days, a, prices, trace.days)
    res.cost = machines + CostBreakdown(s3_usd=s3, other_usd=_other_cost(trace, a, prices))
    return res, batches


DEFAULT_WORKLOADS_FILE = "dags/config/workloads.yaml"


def default_planning(workloads_file: str | Path | None = None) -> dict[str, PlanningSettings]:
    """Return the planning settings of the DAG bundle's workloads file (the deployed ones).

    ``workloads_file``, else ``$WARPSPEED_WORKLOADS_FILE``, else ``dags/config/workloads.yaml``
    under the working folder (the bundle you run the simulator from).
    """
    path = Path(workloads_file or os.environ.get("WARPSPEED_WORKLOADS_FILE") or DEFAULT_WORKLOADS_FILE)
    if not path.is_file():
        raise WarpSpeedConfigError(
            f"{path}: no workloads file; pass --workloads <bundle>/config/workloads.yaml "
            "or set WARPSPEED_WORKLOADS_FILE"
        )
    return WorkloadCatalog.load(path).planning()


def simulate(
    trace: Trace,
    prices: PriceTable | None = None,
    assumptions: SimAssumptions | None = None,
    planning: Mapping[str, PlanningSettings] | None = None,
) -> SimulationResult:
    """Run all three strategies on ``trace`` and scale each to a month."""
    prices = prices or PriceTable.load()
    a = assumptions or SimAssumptions()
    planning = planning if planning is not None else default_planning()
    results = {
        "serverless": simulate_serverless(trace, prices, a),
        "cluster_per_request": simulate_cluster_per_request(trace, prices, a),
    }
    results["warpspeed"], batches = simulate_warpspeed(trace, prices, a, planning)
    factor = DAYS_PER_MONTH / trace.days
    for res in results.values():
        res.monthly = _scale(res.cost, factor)
    return SimulationResult(
        trace_source=trace.source, trace_days=trace.days, requests=len(trace.requests),
        rows=sum(r.accounts for r in trace.requests), windows=trace.windows, batches=batches,
        results=results, assumptions=a, price_table=prices.id,
    )


