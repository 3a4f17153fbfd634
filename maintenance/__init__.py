"""Iceberg maintenance jobs: Spark applications that run Iceberg's procedures on a cluster.

- ``iceberg_maintenance.py``: runs one table's due actions (``expire_snapshots``,
  ``rewrite_data_files``, ``rewrite_manifests``, ``remove_orphan_files``) from a plan document
  written by :mod:`warpspeed.maintenance.service`, and writes a result document.

Like ``spark_jobs/``, these files never import the provider: they are staged with the Spark
jobs (:mod:`warpspeed.compute.staging`) and run where only they exist. The policy (which tables,
which thresholds) and the S3 lifecycle rules are the DAG bundle's config:
``dags/config/maintenance.yaml`` and ``dags/config/s3_lifecycle.yaml``.
"""
