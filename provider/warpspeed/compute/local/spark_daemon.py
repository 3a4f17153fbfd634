"""PySpark's Python worker daemon for the warm local engine, with the scoring libraries preloaded.

Spark forks every Python worker (pandas UDFs of MLflow models) from one daemon process and
kills workers after a minute idle, so each window's workers would import MLflow, scikit-learn,
pandas and pyarrow again (seconds each). The warm engine sets ``spark.python.daemon.module`` to
this module: the imports happen once, in the daemon, and every forked worker starts with them.
"""

from __future__ import annotations

import importlib

PRELOAD = ("numpy", "pandas", "pyarrow", "pyspark.worker", "pyspark.sql.pandas.serializers", "sklearn",
           "skops.io", "mlflow.pyfunc")


def preload() -> list[str]:
    """Import what workers of scoring jobs need; return what is not installed (optional extras)."""
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


if __name__ == "__main__":
    preload()
    from pyspark.daemon import manager

    manager()
