"""Airflow assets of the Iceberg tables Warp Speed writes: the ``iceberg://`` scheme and one asset per table."""
