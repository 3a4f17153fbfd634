"""Warp Speed: batched multi-tenant Spark scoring on EMR and Iceberg, driven by Airflow."""

from __future__ import annotations

__version__ = "0.1.0"
