"""Spin or reuse: one reusable EMR cluster per workload, created by one caller at a time.

A workload's cluster is named ``warpspeed-<workload>-<profile>-<hash>`` and tagged with
``warpspeed:workload`` and ``warpspeed:profile-hash``, where the hash fingerprints the whole
RunJobFlow request (:func:`warpspeed.config.cluster_profiles.request_hash`). The pool reuses an active
(STARTING, BOOTSTRAPPING, RUNNING, WAITING) cluster whose tags match and that has room for the
window's steps; otherwise it creates one. A changed profile changes the hash, so a stale cluster
is never reused: it finishes what it runs and idles out.

Inside the workload's lease (:mod:`warpspeed.compute.emr.lease`) the holder first checks the
cluster id the previous holder recorded in ``<prefix>/emr/pool/<workload>.json`` (DescribeCluster
by id is read-after-write consistent, ListClusters may lag), then the active clusters (one
ListClusters walk shared by every workload of a window), and only then creates one, with the
window's first steps already in the RunJobFlow request, and records its id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from warpspeed.compute.emr.lease import PoolLease
from warpspeed.compute.emr.request import request_hash
from warpspeed.config.cluster_profiles import (
    ACTIVE_CLUSTER_STATES,
    MAX_ACTIVE_STEPS,
    MAX_STEPS_PER_ADD_CALL,
    TAG_PROFILE_HASH,
    TAG_WORKLOAD,
)
from warpspeed.hooks.emr import EmrPoolHook
from warpspeed.storage.documents import Storage

log = logging.getLogger(__name__)

Listing = Callable[[], Sequence[Mapping[str, Any]]]
"""Return the active clusters (ListClusters entries); shared by the workloads of a window."""


@dataclass(frozen=True)
class ClusterChoice:
    """What spin-or-reuse decided and why.

    :param launched: names of the steps the new cluster was created with.
    """

    cluster_id: str
    created: bool
    reason: str
    log_uri: str | None = None
    launched: tuple[str, ...] = ()


class ClusterPool:
    """Find, reuse or create a workload's EMR cluster through the EMR hook.

    :param hook: the EMR client hook.
    """

    def __init__(self, hook: EmrPoolHook) -> None:
        self.hook = hook

    def usable(self, cluster_id: str, workload: str, digest: str, needed_steps: int) -> tuple[bool, str]:
        """Tell whether a cluster is active, of this workload and hash, with room for the steps."""
        cluster = self.hook.describe(cluster_id)
        state = cluster.get("Status", {}).get("State")
        tags = self.hook.tags(cluster_id)
        if state not in ACTIVE_CLUSTER_STATES:
            return False, f"{cluster_id} is {state}"
        if tags.get(TAG_WORKLOAD) != workload or tags.get(TAG_PROFILE_HASH) != digest:
            return False, (
                f"{cluster_id} has workload {tags.get(TAG_WORKLOAD)!r} hash "
                f"{tags.get(TAG_PROFILE_HASH)!r}, want {workload!r} {digest!r}"
            )
        active = len(self.hook.active_steps(cluster_id))
        if active + needed_steps > MAX_ACTIVE_STEPS:
            return False, f"{cluster_id} has {active} active steps, no room for {needed_steps}"
        return True, f"{cluster_id} is {state} with {active} active steps"

    def find_reusable(
        self,
        workload: str,
        request: Mapping[str, Any],
        needed_steps: int,
        hint: str | None = None,
        listing: Listing | None = None,
    ) -> ClusterChoice | None:
        """Return a reusable cluster for the request, checking ``hint`` (a known id) first."""
        digest = request_hash(request)
        candidates = [hint] if hint else []
        if not candidates:
            named = [c for c in (listing or self.hook.active_clusters)() if c.get("Name") == request["Name"]]
            listed = sorted(
                named, key=lambda c: str(c.get("Status", {}).get("Timeline", {}).get("CreationDateTime", ""))
            )
            candidates = [c["Id"] for c in listed]
        for cluster_id in candidates:
            ok, why = self.usable(cluster_id, workload, digest, needed_steps)
            log.info("Workload %s: cluster %s", workload, why)
            if ok:
                return ClusterChoice(cluster_id, False, why, self.hook.log_uri(cluster_id))
        return None

    def ensure_cluster(
        self,
        workload: str,
        request: Mapping[str, Any],
        *,
        lease: PoolLease,
        registry: Storage,
        registry_uri: str,
        needed_steps: int = 1,
        listing: Listing | None = None,
        steps: Sequence[Mapping[str, Any]] = (),
    ) -> ClusterChoice:
        """Reuse the workload's cluster for this request or create one, under the lease.

        :param registry: storage holding the last created cluster of the workload.
        :param registry_uri: that document's URI.
        :param listing: the active clusters, when the caller lists them once for many workloads.
        :param steps: steps to create a new cluster with (at most 256; a reused cluster gets none).
        """
        with lease.hold(workload):
            hint = None
            if registry.exists(registry_uri):
                note = json.loads(registry.read_text(registry_uri))
                if note.get("profile_hash") == request_hash(request):
                    hint = note.get("cluster_id")
            choice = self.find_reusable(workload, request, needed_steps, hint) if hint else None
            choice = choice or self.find_reusable(workload, request, needed_steps, listing=listing)
            if choice:
                return choice
            first = list(steps[:MAX_STEPS_PER_ADD_CALL])
            cluster_id = self.hook.create({**request, "Steps": first} if first else request)
            registry.write_text(
                registry_uri,
                json.dumps(
                    {
                        "cluster_id": cluster_id,
                        "workload": workload,
                        "profile_hash": request_hash(request),
                        "name": request["Name"],
                        "created_at": datetime.now(UTC).isoformat(),
                    }
                ),
            )
            log.info("Workload %s: created cluster %s (%s) with %d steps", workload, cluster_id,
                     request["Name"], len(first))
            return ClusterChoice(
                cluster_id, True, "no reusable cluster", request.get("LogUri"), tuple(s["Name"] for s in first)
            )
