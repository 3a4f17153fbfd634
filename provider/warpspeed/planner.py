"""Plan a window: group requests by workload, drop superseded ones, pack tenants into batches.

Pure code: no Airflow, no AWS. The plan task turns the returned :class:`WindowPlan` into batch
manifests; nothing here does I/O.

Packing: within a workload and priority lane, tenants are placed largest first onto the least
loaded open batch that still has room (rows cap and tenant cap), starting from the fewest
batches the lane's rows need. That is longest-processing-time packing: batches come out close
in size, so Spark runs on one cluster finish together. A tenant whose rows exceed the cap is
never split: it gets a batch of its own (one Spark run scores it whole; splitting a tenant
would make its slice overwrite non-atomic).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from warpspeed.request_schema import PRIORITY_RANK, ScoringRequest
from warpspeed.workloads import PlanningSettings


@dataclass(frozen=True)
class PlannedBatch:
    """One Spark run: the requests of a few tenants in one workload."""

    batch_id: str
    workload: str
    members: tuple[ScoringRequest, ...]
    estimated_rows: int
    priority: str

    @property
    def tenants(self) -> tuple[str, ...]:
        """Return the batch's tenants, sorted."""
        return tuple(sorted({m.tenant_id for m in self.members}))


@dataclass(frozen=True)
class SetAside:
    """A request that is not in this window's batches, and why."""

    request: ScoringRequest
    reason: str


@dataclass(frozen=True)
class WindowPlan:
    """What a window runs, in submission order, plus what it set aside."""

    window_id: str
    batches: tuple[PlannedBatch, ...]
    superseded: tuple[SetAside, ...] = ()
    carried_over: tuple[SetAside, ...] = ()

    @property
    def workloads(self) -> tuple[str, ...]:
        """Return the workloads that have batches, sorted."""
        return tuple(sorted({b.workload for b in self.batches}))


@dataclass
class _TenantWork:
    tenant_id: str
    requests: list[ScoringRequest]
    rows: int
    rank: int


@dataclass(order=True)
class _OpenBatch:
    rows: int
    order: int
    tenants: list[_TenantWork] = field(default_factory=list, compare=False)


def batch_id_for(window_id: str, workload: str, request_ids: Iterable[str]) -> str:
    """Return a batch id that depends only on the window, workload and member request ids."""
    digest = hashlib.sha256("\x1f".join([window_id, workload, *sorted(request_ids)]).encode()).hexdigest()
    return f"{workload}-{digest[:16]}"


def _request_rows(request: ScoringRequest) -> int:
    return max(request.estimated_accounts, 1)


def dedupe_latest(requests: Iterable[ScoringRequest]) -> tuple[list[ScoringRequest], list[SetAside]]:
    """Keep the latest request per (workload, tenant, model); return (kept, superseded)."""
    latest: dict[tuple[str, str, str], ScoringRequest] = {}
    superseded: list[SetAside] = []
    for req in requests:
        key = (req.workload, req.tenant_id, req.model)
        held = latest.get(key)
        if held is None:
            latest[key] = req
            continue
        newer, older = (
            (req, held) if (req.requested_at_dt, req.request_id) > (held.requested_at_dt, held.request_id)
            else (held, req)
        )
        latest[key] = newer
        superseded.append(SetAside(older, f"superseded by {newer.request_id}"))
    return sorted(latest.values(), key=lambda r: r.request_id), superseded


def _tenant_work(requests: Sequence[ScoringRequest]) -> list[_TenantWork]:
    by_tenant: dict[str, list[ScoringRequest]] = defaultdict(list)
    for req in requests:
        by_tenant[req.tenant_id].append(req)
    return [
        _TenantWork(
            tenant_id=tenant,
            requests=sorted(reqs, key=lambda r: r.request_id),
            rows=sum(_request_rows(r) for r in reqs),
            rank=min(PRIORITY_RANK.get(r.priority, 1) for r in reqs),
        )
        for tenant, reqs in by_tenant.items()
    ]


def _pack_lane(tenants: list[_TenantWork], settings: PlanningSettings) -> list[list[_TenantWork]]:
    """Pack one priority lane's tenants into balanced batches (largest first, least loaded)."""
    tenants = sorted(tenants, key=lambda t: (-t.rows, t.tenant_id))
    oversize = [t for t in tenants if t.rows > settings.rows_cap]
    fitting = [t for t in tenants if t.rows <= settings.rows_cap]
    groups: list[list[_TenantWork]] = [[t] for t in oversize]
    if not fitting:
        return groups
    total = sum(t.rows for t in fitting)
    start = max(
        math.ceil(total / settings.rows_cap), math.ceil(len(fitting) / settings.max_tenants_per_batch), 1
    )
    heap = [_OpenBatch(0, i) for i in range(start)]
    opened = list(heap)
    for tenant in fitting:
        candidate = heap[0]
        if (
            candidate.rows + tenant.rows <= settings.rows_cap
            and len(candidate.tenants) < settings.max_tenants_per_batch
        ):
            heapq.heapreplace(heap, _OpenBatch(candidate.rows + tenant.rows, candidate.order, candidate.tenants))
            candidate.tenants.append(tenant)
        else:
            fresh = _OpenBatch(tenant.rows, len(opened), [tenant])
            opened.append(fresh)
            heapq.heappush(heap, fresh)
    groups.extend(b.tenants for b in sorted(opened, key=lambda b: b.order) if b.tenants)
    return groups


def plan_window(
    window_id: str,
    requests: Iterable[ScoringRequest],
    planning: Mapping[str, PlanningSettings],
) -> WindowPlan:
    """Plan one window's valid requests into batches.

    :param window_id: the window's id; part of every batch id.
    :param requests: the window's valid requests (already unique by request id).
    :param planning: workload name -> its planning settings; a request of a workload not in
        this mapping is carried over with that reason rather than dropped.
    """
    kept, superseded = dedupe_latest(requests)
    by_workload: dict[str, list[ScoringRequest]] = defaultdict(list)
    carried: list[SetAside] = []
    for req in kept:
        if req.workload in planning:
            by_workload[req.workload].append(req)
        else:
            carried.append(SetAside(req, f"workload {req.workload!r} has no planning settings"))

    batches: list[PlannedBatch] = []
    for workload in sorted(by_workload):
        settings = planning[workload]
        lanes: dict[int, list[_TenantWork]] = defaultdict(list)
        for work in _tenant_work(by_workload[workload]):
            lanes[work.rank].append(work)
        workload_batches: list[PlannedBatch] = []
        for rank in sorted(lanes):
            for group in _pack_lane(lanes[rank], settings):
                members = tuple(sorted((r for t in group for r in t.requests), key=lambda r: r.request_id))
                workload_batches.append(
                    PlannedBatch(
                        batch_id=batch_id_for(window_id, workload, (m.request_id for m in members)),
                        workload=workload,
                        members=members,
                        estimated_rows=sum(t.rows for t in group),
                        priority=next(p for p, r in PRIORITY_RANK.items() if r == rank),
                    )
                )
        limit = settings.max_batches_per_window
        batches.extend(workload_batches[:limit])
        for overflow in workload_batches[limit:]:
            carried.extend(
                SetAside(m, f"window full: workload {workload!r} runs at most {limit} batches per window")
                for m in overflow.members
            )
    batches.sort(key=lambda b: (PRIORITY_RANK[b.priority], b.workload))
    return WindowPlan(window_id, tuple(batches), tuple(superseded), tuple(carried))
