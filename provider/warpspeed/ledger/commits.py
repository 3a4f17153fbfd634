"""Optimistic commit retries for pyiceberg writers (see :mod:`spark_jobs.iceberg_retry`).

The helper lives in ``spark_jobs`` so the single-node Arrow engine, which ships to clusters
without ``warpspeed``, retries commits the same way the provider's writers do.
"""

from __future__ import annotations

from spark_jobs.iceberg_retry import COMMIT_ATTEMPTS, commit_with_retries

__all__ = ["COMMIT_ATTEMPTS", "commit_with_retries"]
