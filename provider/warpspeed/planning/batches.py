"""Plan a window: group requests by workload, drop superseded ones, pack tenants into batches.

Pure code: no Airflow, no AWS, no I/O. The plan task reads the intake manifest and the pending
(carried-over) requests, calls :func:`plan_window`, and turns the returned :class:`WindowPlan`
into batch manifests and the next pending document.

Steps, per window:

1. **Merge and dedupe.** Carried-over requests join the window's new ones (a request id seen
   in both keeps its carried-over record). Several requests for one (workload, tenant, model)
   collapse into the latest by (requested-at, request id); the others are *superseded*. The
   survivor inherits the longest wait of the requests it replaces, so re-sending a request
   never resets its age.
2. **Lanes.** Each workload is planned on its own; inside it, each priority lane (see
   :attr:`PlanningSettings.priority_lanes`) is packed on its own and submitted before the next
   one. A request carried over ``promote_after_windows`` windows moves one lane up.
3. **Pack.** A tenant's requests of one workload stay together. Tenants are placed largest
   first onto the least loaded batch that has room (rows cap and tenant cap), starting from the
   fewest batches the lane needs; if that leaves some tenants over, the lane is packed again
   with that many batches open from the start, so the extra batches are not left small
   (longest-processing-time packing). A tenant larger than the rows cap is never split: it
   gets a batch of its own, because a batch overwrites whole (tenant, model) slices of the
   scores table and a split tenant would need two runs to agree on one slice.
4. **Window limit.** Lanes take ``max_batches_per_window`` in lane order. When a lane does not
   fit in what is left, its tenants are admitted oldest first (windows waited, first window,
   earliest request) as the longest prefix whose packing fits; later tenants that still fit
   into the room left are added; the rest are *carried over* with a reason.

Batch ids hash the window id, the workload and the sorted member request ids, so a retried
plan of the same input writes the same manifests under the same names.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from warpspeed.config.workloads import PlanningSettings
from warpspeed.intake.schema import ScoringRequest
from warpspeed.planning.packing import TenantLoad, lower_bound, pack_lane


@dataclass(frozen=True)
class PlannedBatch:
    """One Spark run: the requests of a few tenants in one workload.

    :param priority: the label of the batch's priority lane, e.g. ``high`` or ``normal+low``.
    :param lane: the lane's index; lower lanes are submitted first.
    :param engine: ``spark`` or ``arrow``, set by :func:`warpspeed.planning.routing.route_plan`.
    """

    batch_id: str
    workload: str
    members: tuple[ScoringRequest, ...]
    estimated_rows: int
    priority: str
    lane: int = 0
    carried_members: int = 0
    engine: str = "spark"

    @property
    def tenants(self) -> tuple[str, ...]:
        """Return the batch's tenants, sorted."""
        return tuple(sorted({m.tenant_id for m in self.members}))


@dataclass(frozen=True)
class PendingRequest:
    """A request that an earlier window carried over and a later window must plan.

    :param request: the request as it was collected.
    :param source_window_id: the window whose intake manifest holds the request.
    :param first_window_id: the window its (tenant, model) pair started waiting in; inherited
        from requests it superseded.
    :param carried: how many windows it has been carried over so far.
    """

    request: ScoringRequest
    source_window_id: str
    first_window_id: str
    carried: int = 1

    def __post_init__(self) -> None:
        if self.carried < 0:
            raise ValueError(f"carried must not be negative, got {self.carried}")


@dataclass(frozen=True)
class SetAside:
    """A request that is not in this window's batches, and why.

    For a carried-over request ``carried`` already counts this window.
    """

    request: ScoringRequest
    reason: str
    source_window_id: str = ""
    first_window_id: str = ""
    carried: int = 0

    def pending(self) -> PendingRequest:
        """Return the record the next window plans this request from."""
        return PendingRequest(self.request, self.source_window_id, self.first_window_id, self.carried)


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

    @property
    def pending(self) -> tuple[PendingRequest, ...]:
        """Return what the next window must plan: the carried-over requests, by request id."""
        return tuple(s.pending() for s in self.carried_over)


_BY_REQUEST_ID = attrgetter("request.request_id")

_Age = tuple[str, str, int]
"""(source window id, first window id, windows carried) of a request that has waited."""


def batch_id_for(window_id: str, workload: str, request_ids: Iterable[str]) -> str:
    """Return a batch id that depends only on the window, workload and member request ids."""
    digest = hashlib.sha256("\x1f".join([window_id, workload, *sorted(request_ids)]).encode()).hexdigest()
    return f"{workload}-{digest[:16]}"


def request_rows(request: ScoringRequest) -> int:
    """Return the rows a request adds to a batch: its estimated accounts, at least 1."""
    return max(request.estimated_accounts, 1)


def _newest(
    group: Sequence[ScoringRequest], unavailable: Collection[tuple[str, str]] = frozenset()
) -> ScoringRequest:
    """Return the latest request by (requested-at as an instant, request id).

    A request whose (model, version) is ``unavailable`` (missing, or unusable on the workload's
    feature table) never supersedes one whose version is available, however new it is.
    """
    parse = datetime.fromisoformat
    newest = group[0]
    newest_key = ((newest.model, newest.model_version) not in unavailable, parse(newest.requested_at),
                  newest.request_id)
    for req in group[1:]:
        key = ((req.model, req.model_version) not in unavailable, parse(req.requested_at), req.request_id)
        if key > newest_key:
            newest, newest_key = req, key
    return newest


def _dedupe(
    requests: Iterable[ScoringRequest], ages: dict[str, _Age], window_id: str,
    unavailable: Collection[tuple[str, str]] = frozenset(),
) -> tuple[list[ScoringRequest], list[SetAside]]:
    """Keep the latest request per (workload, tenant, model); return (kept, superseded).

    A survivor inherits the longest wait of its group: ``ages`` is updated in place.
    """
    first: dict[tuple[str, str, str], ScoringRequest] = {}
    more: dict[tuple[str, str, str], list[ScoringRequest]] = {}
    for req in requests:
        key = (req.workload, req.tenant_id, req.model)
        held = first.setdefault(key, req)
        if held is not req:
            group = more.get(key)
            if group is None:
                more[key] = [held, req]
            else:
                group.append(req)
    superseded: list[SetAside] = []
    fresh: _Age = (window_id, window_id, 0)
    for key, group in more.items():
        newest = _newest(group, unavailable)
        first[key] = newest
        reason = f"superseded by {newest.request_id}"
        if not ages:
            superseded.extend(SetAside(old, reason, *fresh) for old in group if old is not newest)
            continue
        for old in group:
            if old is not newest:
                superseded.append(SetAside(old, reason, *ages.get(old.request_id, fresh)))
        waited = [ages[r.request_id] for r in group if r.request_id in ages]
        if waited:
            own = ages.get(newest.request_id, fresh)
            ages[newest.request_id] = (own[0], min(a[1] for a in waited), max(a[2] for a in waited))
    kept = list(first.values())
    superseded.sort(key=_BY_REQUEST_ID)
    return kept, superseded


def dedupe_latest(requests: Iterable[ScoringRequest]) -> tuple[list[ScoringRequest], list[SetAside]]:
    """Keep the latest request per (workload, tenant, model); return (kept, superseded)."""
    kept, superseded = _dedupe(requests, {}, "")
    return sorted(kept, key=lambda r: r.request_id), superseded


def _admit(
    tenants: Sequence[TenantLoad], settings: PlanningSettings, budget: int
) -> tuple[list[list[TenantLoad]], list[TenantLoad]]:
    """Pick the lane's tenants that fit in ``budget`` batches, oldest first; return (groups, left over)."""

    def oldest_first(t: TenantLoad) -> tuple[int, str, float, str]:
        earliest = min(r.requested_at_dt.timestamp() for r in t.requests)
        return (-t.carried, t.first_window_id, earliest, t.tenant_id)

    order = sorted(tenants, key=oldest_first)
    # no prefix longer than `high` can fit: its lower bound on batches already exceeds the budget
    high = oversize = rows = count = 0
    for tenant in order:
        if tenant.rows > settings.rows_cap:
            oversize += 1
        else:
            rows += tenant.rows
            count += 1
        if lower_bound(oversize, rows, count, settings) > budget:
            break
        high += 1
    best = pack_lane(order[:high], settings)
    if len(best) > budget:  # binary search the longest prefix that packs into the budget
        low, best = 0, []
        while high - low > 1:
            middle = (low + high) // 2
            groups = pack_lane(order[:middle], settings)
            if len(groups) <= budget:
                low, best = middle, groups
            else:
                high = middle
        high = low
    # backfill: later tenants that still fit go in now, in the same oldest-first order
    heap = [
        (sum(t.rows for t in g), i)
        for i, g in enumerate(best)
        if len(g) < settings.max_tenants_per_batch and sum(t.rows for t in g) <= settings.rows_cap
    ]
    heapq.heapify(heap)
    left: list[TenantLoad] = []
    for tenant in order[high:]:
        if tenant.rows <= settings.rows_cap and heap and heap[0][0] + tenant.rows <= settings.rows_cap:
            load, index = heap[0]
            best[index].append(tenant)
            if len(best[index]) >= settings.max_tenants_per_batch:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (load + tenant.rows, index))
        elif len(best) < budget:
            best.append([tenant])
            if tenant.rows <= settings.rows_cap and settings.max_tenants_per_batch > 1:
                heapq.heappush(heap, (tenant.rows, len(best) - 1))
        else:
            left.append(tenant)
    return best, left


def _tenants(
    requests: Sequence[ScoringRequest], ages: Mapping[str, _Age], settings: PlanningSettings
) -> list[TenantLoad]:
    """Group one workload's requests by tenant; a tenant takes its best lane and its longest wait."""
    by_tenant: dict[str, list[ScoringRequest]] = defaultdict(list)
    for req in requests:
        by_tenant[req.tenant_id].append(req)
    last = len(settings.priority_lanes) - 1
    lane_of = {p: settings.lane_of(p) for lane in settings.priority_lanes for p in lane}
    promote = settings.promote_after_windows
    out = []
    for tenant_id, group in by_tenant.items():
        rows = 0
        lane = last
        for req in group:
            rows += req.estimated_accounts if req.estimated_accounts > 0 else 1
            lane = min(lane, lane_of.get(req.priority, last))
        tenant = TenantLoad(tenant_id, group, rows, lane)
        waited = [ages[r.request_id] for r in group if r.request_id in ages] if ages else None
        if waited:
            tenant.carried = max(a[2] for a in waited)
            tenant.first_window_id = min(a[1] for a in waited)
            tenant.lane = min(
                max(0, lane_of.get(r.priority, last) - ages.get(r.request_id, ("", "", 0))[2] // promote)
                for r in group
            )
        out.append(tenant)
    return out


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: planning allocates many small acyclic objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def plan_window(
    window_id: str,
    requests: Iterable[ScoringRequest],
    planning: Mapping[str, PlanningSettings],
    pending: Iterable[PendingRequest] = (),
    unavailable: Collection[tuple[str, str]] = frozenset(),
) -> WindowPlan:
    """Plan one window's valid requests, plus those carried over from earlier windows, into batches.

    Every request (unique by request id) ends in exactly one batch, or in ``superseded``, or in
    ``carried_over`` with its reason.

    :param window_id: the window's id; part of every batch id.
    :param requests: the window's valid requests (already unique by request id).
    :param planning: workload name -> its planning settings; a request of a workload not in
        this mapping is carried over with that reason rather than dropped.
    :param pending: requests earlier windows carried over; they keep their age.
    :param unavailable: (model, version) pairs known to be missing or unusable; a request for
        one never supersedes a request for an available version of the same model.
    """
    with _gc_paused():
        return _plan_window(window_id, requests, planning, pending, unavailable)


def _plan_window(
    window_id: str,
    requests: Iterable[ScoringRequest],
    planning: Mapping[str, PlanningSettings],
    pending: Iterable[PendingRequest],
    unavailable: Collection[tuple[str, str]] = frozenset(),
) -> WindowPlan:
    by_id = {r.request_id: r for r in requests}
    ages: dict[str, _Age] = {}
    for held in pending:  # a carried-over request keeps its record (and its age)
        by_id[held.request.request_id] = held.request
        ages[held.request.request_id] = (held.source_window_id, held.first_window_id, held.carried)
    kept, superseded = _dedupe(by_id.values(), ages, window_id, unavailable)
    fresh: _Age = (window_id, window_id, 0)

    def carry(req: ScoringRequest, reason: str) -> SetAside:
        source, first, waited = ages.get(req.request_id, fresh)
        return SetAside(req, reason, source, first, waited + 1)

    by_workload: dict[str, list[ScoringRequest]] = defaultdict(list)
    carried: list[SetAside] = []
    for req in kept:
        if req.workload in planning:
            by_workload[req.workload].append(req)
        else:
            carried.append(carry(req, f"workload {req.workload!r} has no planning settings"))

    batches: list[PlannedBatch] = []
    for workload in sorted(by_workload):
        settings = planning[workload]
        lanes: dict[int, list[TenantLoad]] = defaultdict(list)
        for tenant in _tenants(by_workload[workload], ages, settings):
            lanes[tenant.lane].append(tenant)
        budget = settings.max_batches_per_window
        full = (f"window full: workload {workload!r} runs at most "
                f"{settings.max_batches_per_window} batches per window")
        for lane in sorted(lanes):
            groups = pack_lane(lanes[lane], settings) if budget else []
            left: list[TenantLoad] = [] if budget else lanes[lane]
            if len(groups) > budget:
                groups, left = _admit(lanes[lane], settings, budget)
            budget -= len(groups)
            carried.extend(carry(r, full) for t in left for r in t.requests)
            for group in groups:
                members = tuple(
                    sorted((r for t in group for r in t.requests), key=lambda r: r.request_id)
                )
                batches.append(
                    PlannedBatch(
                        batch_id=batch_id_for(window_id, workload, (m.request_id for m in members)),
                        workload=workload,
                        members=members,
                        estimated_rows=sum(t.rows for t in group),
                        priority=settings.lane_label(lane),
                        lane=lane,
                        carried_members=sum(1 for m in members if m.request_id in ages),
                    )
                )
    batches.sort(key=lambda b: (b.lane, b.workload, -b.estimated_rows, b.batch_id))
    carried.sort(key=_BY_REQUEST_ID)
    return WindowPlan(window_id, tuple(batches), tuple(superseded), tuple(carried))
