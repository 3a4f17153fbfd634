"""Replay a scoring request trace under three strategies and price a month of each.

Strategies:

``serverless``
    Per-request EMR Serverless: every request is its own Spark application (the case study's
    MVP). Billed per worker-second (driver + executors), at least a minute per worker.
``cluster_per_request``
    Per-request EMR on EC2: every request launches a cluster (on-demand master and core), runs
    one step and terminates. Billed for provisioning and bootstrap too.
``warpspeed``
    Warp Speed: requests are planned per 30-minute window by the real batch planner
    (:func:`warpspeed.planner.plan_window` with ``dags/config/workloads.yaml``); each workload
    has one long-lived cluster (master and core on RI-covered on-demand capacity) that runs
    every batch as a step, and a Spot task fleet sized per window by managed scaling; tables
    are maintained (compaction, snapshot expiry), which cuts S3 requests.

Everything the model assumes is a field of :class:`SimAssumptions` with its default and why;
``warpspeed simulate`` prints them next to the result. Prices come from the price table
(:mod:`warpspeed.cost_model`). The trace is either generated (:meth:`Trace.generate`, shaped
like the case study: ~1,500-2,000 scores per 30-minute window over a few hundred tenants) or
read from a CSV/JSONL file (:meth:`Trace.from_file`). A trace of ``d`` days is scaled to a
month (30.4 days).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from warpspeed.cost_model import CostBreakdown, PriceTable
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.planner import PendingRequest, plan_window
from warpspeed.request_schema import ScoringRequest
from warpspeed.workloads import PlanningSettings, WorkloadCatalog

DAYS_PER_MONTH = 30.4
STRATEGIES = ("serverless", "cluster_per_request", "warpspeed")
LABELS = {
    "serverless": "EMR Serverless, one job per request",
    "cluster_per_request": "EMR on EC2, one cluster per request",
    "warpspeed": "Warp Speed: 30-min batches, reused clusters, Spot",
}
TRACE_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class TraceRequest:
    """One scoring request of a trace."""

    window: int
    tenant_id: str
    model: str
    workload: str
    accounts: int


@dataclass(frozen=True)
class Trace:
    """A request trace cut into windows."""

    requests: tuple[TraceRequest, ...]
    windows: int
    window_minutes: int = 30
    source: str = "generated"

    def __post_init__(self) -> None:
        if self.windows < 1:
            raise WarpSpeedConfigError("trace must span at least one window")
        if not 1 <= self.window_minutes <= 1440:
            raise WarpSpeedConfigError(f"window_minutes={self.window_minutes} must be between 1 and 1440")

    @property
    def days(self) -> float:
        """Return the time the trace spans, in days."""
        return self.windows * self.window_minutes / 1440

    def by_window(self) -> Iterator[tuple[int, list[TraceRequest]]]:
        """Yield (window index, its requests) for every window, empty ones included."""
        groups: dict[int, list[TraceRequest]] = {}
        for req in self.requests:
            groups.setdefault(req.window, []).append(req)
        for w in range(self.windows):
            yield w, groups.get(w, [])

    @classmethod
    def generate(
        cls,
        *,
        days: float = 2,
        requests_per_window: tuple[int, int] = (1500, 2000),
        tenants: int = 400,
        models: Mapping[str, str] | None = None,
        accounts_median: int = 1500,
        accounts_sigma: float = 1.3,
        max_accounts: int = 3_000_000,
        window_minutes: int = 30,
        seed: int = 7,
    ) -> Trace:
        """Generate a case-study-like trace.

        Each window draws a request count uniformly in ``requests_per_window`` and that many
        distinct (tenant, model) pairs (so no request supersedes another and every strategy
        scores the same work). Tenant sizes are log-normal (median ``accounts_median``
        accounts), fixed per tenant. Models map to workloads as in ``dags/config/workloads.yaml``
        plus synthetic ones so that a few hundred tenants can make ~2,000 distinct pairs.
        """
        models = dict(models or DEFAULT_TRACE_MODELS)
        if tenants < 1 or not models:
            raise WarpSpeedConfigError("trace needs at least one tenant and one model")
        low, high = requests_per_window
        pairs = tenants * len(models)
        if not 0 <= low <= high or high > pairs:
            raise WarpSpeedConfigError(
                f"requests_per_window={requests_per_window} must be ordered and at most "
                f"tenants x models = {pairs}"
            )
        rng = np.random.default_rng(seed)
        sizes = np.clip(rng.lognormal(math.log(accounts_median), accounts_sigma, tenants), 50, max_accounts)
        model_names = sorted(models)
        windows = max(1, round(days * 1440 / window_minutes))
        out = []
        for w in range(windows):
            count = int(rng.integers(low, high + 1))
            for pair in rng.choice(pairs, size=count, replace=False):
                t, m = divmod(int(pair), len(model_names))
                out.append(TraceRequest(w, f"tenant-{t:04d}", model_names[m], models[model_names[m]],
                                        int(sizes[t])))
        return cls(tuple(out), windows, window_minutes, f"generated (seed {seed})")

    @classmethod
    def from_file(cls, path: str | Path, window_minutes: int = 30) -> Trace:
        """Read a trace: CSV with a header, or JSON lines.

        Fields: ``requested_at`` (ISO 8601), ``tenant_id``, ``model``, ``workload``,
        ``estimated_accounts``. Windows count from the first request's window.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WarpSpeedConfigError(f"trace file {path} does not exist") from None
        if path.suffix in (".jsonl", ".ndjson", ".json"):
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise WarpSpeedConfigError(f"trace file {path} has no requests")
        parsed = []
        for i, row in enumerate(rows, start=1):
            try:
                at = datetime.fromisoformat(str(row["requested_at"]).replace("Z", "+00:00"))
                if at.tzinfo is None:
                    at = at.replace(tzinfo=UTC)
                parsed.append((at, str(row["tenant_id"]), str(row["model"]), str(row["workload"]),
                               int(row["estimated_accounts"])))
            except (KeyError, ValueError, TypeError) as err:
                raise WarpSpeedConfigError(f"trace file {path}, request {i}: {err!r}") from err
        start = min(p[0] for p in parsed)
        start = start.replace(minute=start.minute - start.minute % window_minutes if window_minutes <= 60
                              else 0, second=0, microsecond=0)
        step = timedelta(minutes=window_minutes)
        reqs = tuple(TraceRequest(int((at - start) / step), t, m, wl, max(1, a))
                     for at, t, m, wl, a in parsed)
        return cls(reqs, max(r.window for r in reqs) + 1, window_minutes, str(path))

    def write_csv(self, path: str | Path) -> None:
        """Write the trace in the format :meth:`from_file` reads."""
        with Path(path).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["requested_at", "tenant_id", "model", "workload", "estimated_accounts"])
            for r in self.requests:
                at = TRACE_EPOCH + timedelta(minutes=r.window * self.window_minutes + 1)
                writer.writerow([at.isoformat(), r.tenant_id, r.model, r.workload, r.accounts])


DEFAULT_TRACE_MODELS: dict[str, str] = {
    "churn_risk": "scoring", "upsell_propensity": "scoring", "fit_score": "scoring",
    "pipeline_predict": "scoring", "engagement_score": "scoring", "intent_surge": "intent",
}
"""The configured models plus synthetic ones (400 tenants x 6 models = 2,400 distinct pairs)."""


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
    res.s3_gets = res.spark_apps * (a.s3_gets_per_app_unmaintained + a.s3_gets_per_slice)
    res.s3_puts = res.spark_apps * (a.s3_puts_per_app + a.s3_puts_per_slice)
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
    ec2 = master_h * prices.ec2_hourly(a.cpr_master_type, "ON_DEMAND") + core_h * core.on_demand
    fee = master_h * prices.emr_fee_hourly(a.cpr_master_type) + core_h * core.emr_fee
    res.s3_gets = res.spark_apps * (a.s3_gets_per_app_unmaintained + a.s3_gets_per_slice)
    res.s3_puts = res.spark_apps * (a.s3_puts_per_app + a.s3_puts_per_slice)
    s3 = prices.s3.requests_cost(res.s3_gets, res.s3_puts) + _storage_cost(
        float(accounts.sum()) / trace.days, a.unmaintained_retained_days, a, prices, trace.days)
    res.cost = CostBreakdown(ec2_usd=ec2, emr_fee_usd=fee, s3_usd=s3, other_usd=_other_cost(trace, a, prices))
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
    ec2 = (master_h * prices.ec2_hourly(a.ws_master_type, a.ws_core_market)
           + core_h * prices.ec2_hourly(a.ws_core_type, a.ws_core_market)
           + spot_h * prices.ec2_hourly(a.ws_task_type, "SPOT")
           + fallback_h * task.on_demand
           + maint_h * (prices.ec2_hourly(a.ws_master_type, "ON_DEMAND")
                        + a.ws_core_count * prices.ec2_hourly(a.ws_core_type, "ON_DEMAND")))
    fee = ((master_h + maint_h) * prices.emr_fee_hourly(a.ws_master_type)
           + (core_h + maint_h * a.ws_core_count) * prices.emr_fee_hourly(a.ws_core_type)
           + task_hours * task.emr_fee)
    res.spark_apps = batches
    res.clusters_launched = clusters
    res.instance_hours_on_demand = master_h + core_h + fallback_h + maint_h * (1 + a.ws_core_count)
    res.instance_hours_spot = spot_h
    res.s3_gets = batches * a.s3_gets_per_app_maintained + slices * a.s3_gets_per_slice
    res.s3_puts = batches * a.s3_puts_per_app + slices * a.s3_puts_per_slice
    rows = sum(r.accounts for r in trace.requests)
    s3 = prices.s3.requests_cost(res.s3_gets, res.s3_puts) + _storage_cost(
        rows / trace.days, a.maintained_retained_days, a, prices, trace.days)
    res.cost = CostBreakdown(ec2_usd=ec2, emr_fee_usd=fee, s3_usd=s3,
                             other_usd=_other_cost(trace, a, prices))
    return res, batches


def default_planning() -> dict[str, PlanningSettings]:
    """Return the planning settings of ``dags/config/workloads.yaml`` (the deployed ones)."""
    from warpspeed.settings import REPO_ROOT

    return WorkloadCatalog.load(REPO_ROOT / "dags" / "config" / "workloads.yaml").planning()


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


def format_table(result: SimulationResult) -> str:
    """Return the monthly cost table as fixed-width text."""
    head = (f"{'strategy':<52} {'Spark apps/mo':>13} {'inst-h OD':>10} {'inst-h Spot':>11} "
            f"{'compute $':>11} {'EMR fee $':>10} {'S3 $':>9} {'other $':>8} {'total $/mo':>11} {'x':>6}")
    lines = [head, "-" * len(head)]
    factor = DAYS_PER_MONTH / result.trace_days
    base = result.results["serverless"].monthly_total
    for name in STRATEGIES:
        r = result.results[name]
        m = r.monthly
        lines.append(
            f"{LABELS[name]:<52} {r.spark_apps * factor:>13,.0f} "
            f"{r.instance_hours_on_demand * factor:>10,.0f} "
            f"{r.instance_hours_spot * factor:>11,.0f} {m.ec2_usd + m.serverless_usd:>11,.0f} "
            f"{m.emr_fee_usd:>10,.0f} {m.s3_usd:>9,.0f} {m.other_usd:>8,.0f} {m.total_usd:>11,.0f} "
            f"{base / m.total_usd:>6.1f}"
        )
    return "\n".join(lines)


def format_assumptions(result: SimulationResult) -> str:
    """Return every assumption as ``name = value  # why`` lines."""
    docs = _field_docs()
    scale = DAYS_PER_MONTH / result.trace_days
    out = [f"trace: {result.trace_source}; {result.windows} windows of {result.requests:,} requests "
           f"({result.rows:,} accounts) over {result.trace_days:g} days, scaled x{scale:.2f}"
           f" to a {DAYS_PER_MONTH}-day month; Warp Speed planned {result.batches:,} batches",
           f"prices: {result.price_table} (compute = EC2 or EMR Serverless; "
           "the EMR fee is not discounted on Spot)"]
    for f in fields(result.assumptions):
        note = docs.get(f.name)
        out.append(f"  {f.name} = {getattr(result.assumptions, f.name)}" + (f"  # {note}" if note else ""))
    return "\n".join(out)


def _field_docs() -> dict[str, str]:
    """Return the attribute docstrings of :class:`SimAssumptions` (first line each)."""
    import ast
    import inspect
    import itertools

    tree = ast.parse(inspect.getsource(SimAssumptions))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def write_chart(result: SimulationResult, path: str | Path) -> Path:
    """Write a PNG: monthly cost per strategy (log scale) and each one's cost structure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(STRATEGIES)
    parts = {
        "compute (EC2 / Serverless)": [
            result.results[n].monthly.ec2_usd + result.results[n].monthly.serverless_usd for n in names],
        "EMR fee": [result.results[n].monthly.emr_fee_usd for n in names],
        "S3": [result.results[n].monthly.s3_usd for n in names],
        "other (SQS, Airflow)": [result.results[n].monthly.other_usd for n in names],
    }
    totals = [result.results[n].monthly_total for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = ["#c0392b", "#7f8c8d", "#27ae60"]
    labels = [LABELS[n].replace(", ", ",\n").replace(": ", ":\n") for n in names]
    left.bar(range(3), totals, color=colors)
    left.set_yscale("log")
    left.set_xticks(range(3), labels, fontsize=8)
    left.set_ylabel("$ per month (log scale)")
    left.set_title("Monthly cost")
    for i, v in enumerate(totals):
        left.text(i, v * 1.08, f"${v:,.0f}", ha="center", fontsize=9)
    bottom = np.zeros(3)
    palette = ["#2e86c1", "#f39c12", "#8e44ad", "#95a5a6"]
    for (label, values), color in zip(parts.items(), palette, strict=True):
        share = np.array(values) / np.array(totals) * 100
        right.bar(range(3), share, bottom=bottom, label=label, color=color)
        bottom += share
    right.set_xticks(range(3), labels, fontsize=8)
    right.set_ylabel("% of the strategy's bill")
    right.set_title("Where the money goes")
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{result.requests:,} requests over {result.trace_days:g} days, scaled to a month: "
                 f"Warp Speed is {result.ratio_vs_serverless():.1f}x cheaper than per-request EMR Serverless",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_cli(
    *,
    trace_path: str | None,
    days: float,
    tenants: int,
    requests_per_window: Sequence[int],
    seed: int,
    prices_path: str | None,
    chart: str,
    json_out: str | None,
) -> SimulationResult:
    """Run ``warpspeed simulate``: simulate, print the table and assumptions, write the chart."""
    per_window = (int(requests_per_window[0]), int(requests_per_window[-1]))
    trace = (Trace.from_file(trace_path) if trace_path
             else Trace.generate(days=days, tenants=tenants, seed=seed, requests_per_window=per_window))
    result = simulate(trace, PriceTable.load(prices_path))
    print(format_table(result))
    print()
    print(f"sim_cost_ratio_vs_serverless = {result.ratio_vs_serverless():.2f} "
          f"(the case study: ~$22,000 -> ~$2,000 a month, 11x)")
    print()
    print("Assumptions")
    print(format_assumptions(result))
    written = write_chart(result, chart)
    print(f"\nchart: {written}")
    if json_out:
        Path(json_out).write_text(json.dumps(result.to_dict(), indent=1, default=str), encoding="utf-8")
        print(f"json: {json_out}")
    return result
