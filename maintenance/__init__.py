"""Iceberg maintenance definitions kept beside the DAG bundle.

- ``s3_lifecycle.yaml``: S3 lifecycle rules for intake/batch manifests, maintenance documents
  and logs, applied by :class:`warpspeed.operators.s3_lifecycle.ApplyS3LifecycleOperator`.
- The Spark procedures runner is ``spark_jobs/iceberg_maintenance.py`` (it ships with the other
  Spark jobs to EMR); the table registry and policy is ``dags/config/maintenance.yaml``.
"""

from __future__ import annotations

from pathlib import Path

LIFECYCLE_RULES_FILE = Path(__file__).resolve().parent / "s3_lifecycle.yaml"
"""The lifecycle rules this repository ships."""
