"""PySpark jobs shipped to EMR steps, Glue jobs and local ``spark-submit`` alike.

This package must not import ``warpspeed`` (the provider): on a cluster only these files exist.
"""
