"""Pack tenants into balanced batches under a row cap (pure): longest-processing-time first.

An oversize tenant gets its own batch; the rest go, largest first, on the least loaded batch
with room, starting from the fewest batches they can fit in.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from warpspeed.config.workloads import PlanningSettings
from warpspeed.intake.schema import ScoringRequest


@dataclass(slots=True)
class TenantLoad:
    """One tenant's requests of a lane and the rows they add to a batch."""

    tenant_id: str
    requests: list[ScoringRequest]
    rows: int
    lane: int
    carried: int = 0
    first_window_id: str = ""


def lpt(
    fitting: Sequence[TenantLoad], bins: int, settings: PlanningSettings
) -> tuple[list[list[TenantLoad]], bool]:
    """Place tenants (largest first) on the least loaded of ``bins`` batches with room.

    Return the groups and whether batches beyond ``bins`` had to be opened.
    """
    cap, max_tenants = settings.rows_cap, settings.max_tenants_per_batch
    groups: list[list[TenantLoad]] = [[] for _ in range(bins)]
    heap = [(0, i) for i in range(bins)]  # (rows, index) of batches with tenant room; a valid heap
    opened = False
    for tenant in fitting:
        if heap and heap[0][0] + tenant.rows <= cap:
            rows, index = heap[0]
            groups[index].append(tenant)
            if len(groups[index]) >= max_tenants:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (rows + tenant.rows, index))
        else:  # the least loaded batch with room cannot take it, so none can
            opened = True
            groups.append([tenant])
            if max_tenants > 1:
                heapq.heappush(heap, (tenant.rows, len(groups) - 1))
    return groups, opened


def pack_lane(tenants: Sequence[TenantLoad], settings: PlanningSettings) -> list[list[TenantLoad]]:
    """Pack one lane's tenants into balanced batches; an oversize tenant gets its own batch."""
    cap = settings.rows_cap
    ordered = sorted(tenants, key=lambda t: (-t.rows, t.tenant_id))
    groups: list[list[TenantLoad]] = [[t] for t in ordered if t.rows > cap]
    fitting = [t for t in ordered if t.rows <= cap]
    if not fitting:
        return groups
    bins = lower_bound(0, sum(t.rows for t in fitting), len(fitting), settings)
    for _ in range(3):  # usually one pass, at most a second; the third is a safety net
        packed, opened = lpt(fitting, bins, settings)
        if not opened:
            break
        bins = len(packed)
    groups.extend(packed)
    return groups


def lower_bound(oversize: int, rows: int, count: int, settings: PlanningSettings) -> int:
    """Return the fewest batches some tenants can fit in: one per oversize tenant, plus the rest."""
    by_rows = math.ceil(rows / settings.rows_cap)
    return oversize + max(by_rows, math.ceil(count / settings.max_tenants_per_batch))
