"""Amazon S3 Tables maintain their tables themselves: what Warp Speed skips there, and the equivalent settings (pure).

S3 Tables run compaction, snapshot management and unreferenced-file removal on every table of a
table bucket, and their documentation warns that user commits and compaction commits can
conflict. So on an S3 Tables catalog the maintenance DAG runs none of its four procedures: it
logs :data:`SKIP_REASON` per registered table, and :func:`maintenance_requests` gives the S3
Tables maintenance API requests (``PutTableMaintenanceConfiguration``,
``PutTableBucketMaintenanceConfiguration``) that carry the table's policy over, for an operator
to apply with permissions Warp Speed's roles do not need.
"""

from __future__ import annotations

import math
from typing import Any

from warpspeed.config.maintenance_policy import TablePolicy

SKIP_REASON = (
    "S3 Tables maintain this table themselves (compaction, snapshot management, unreferenced file "
    "removal); Warp Speed's procedures would only add commits that conflict with theirs. Configure "
    "them through the S3 Tables maintenance API (docs/maintenance.md, S3 Tables)"
)


def maintenance_requests(policy: TablePolicy, table_bucket_arn: str) -> list[dict[str, Any]]:
    """Return the S3 Tables maintenance requests equivalent to ``policy`` (``operation`` + its parameters).

    Compaction's target file size and the snapshot horizon (``max_age_hours``, ``retain_last``)
    map one to one; orphan removal is per table bucket in S3 Tables (``unreferencedDays``: the
    policy's orphan age in whole days, at least 1).
    """
    namespace, name = policy.identifier.split(".")
    table = {"tableBucketARN": table_bucket_arn, "namespace": namespace, "name": name}
    return [
        {"operation": "PutTableMaintenanceConfiguration", **table, "type": "icebergCompaction",
         "value": {"status": "enabled", "settings": {"icebergCompaction": {
             "targetFileSizeMB": policy.compaction.target_file_size_mb}}}},
        {"operation": "PutTableMaintenanceConfiguration", **table, "type": "icebergSnapshotManagement",
         "value": {"status": "enabled", "settings": {"icebergSnapshotManagement": {
             "minSnapshotsToKeep": policy.snapshots.retain_last,
             "maxSnapshotAgeHours": max(1, math.ceil(policy.snapshots.max_age_hours))}}}},
        {"operation": "PutTableBucketMaintenanceConfiguration", "tableBucketARN": table_bucket_arn,
         "type": "icebergUnreferencedFileRemoval",
         "value": {"status": "enabled", "settings": {"icebergUnreferencedFileRemoval": {
             "unreferencedDays": max(1, math.ceil(policy.orphan_older_than_hours / 24))}}}},
    ]
