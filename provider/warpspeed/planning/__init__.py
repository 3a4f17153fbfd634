"""Pure planning (no Airflow, no AWS): what to do, returned as dataclasses.

``batches`` plans a scoring window into batches (``packing`` packs tenants under the row cap),
``maintenance`` decides which Iceberg maintenance is due, ``refresh`` which raw partitions a
feature refresh reprocesses.
"""
