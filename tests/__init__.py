"""The test suite. Importing it (pytest does, before any conftest) sets the suite's GC thresholds.

CPython collects its youngest generation every 700 net allocations and the whole heap whenever it
has grown by a quarter. A process that imports Airflow, pyiceberg, MLflow and pandas builds a
large heap in a burst: in an ``airflow dags test`` run of one window, collections took 2.41 of its
10.33 CPU seconds, in the pytest process 1.39 of 5.45. Collecting less often (below) cut the unit
lane from 75.0 to 57.5 CPU-s and one DAG-run test from 25.0-28.4 to 22.7-24.0. Cyclic garbage lives
longer; the suite's processes are short-lived, or servers that run for minutes.

Every process of the suite gets the same thresholds: this sets ``WARPSPEED_TEST_GC_THRESHOLD``,
which the children inherit, and ``make setup`` puts ``tests/gc_threshold.pth`` in the checkout's
virtualenv, so that each interpreter of it applies the variable at start (airflow commands, tasks,
servers, Spark's Python workers). Without the variable (``make demo``, ``make bench``, a wheel
user's environment) CPython keeps its defaults.
"""

from __future__ import annotations

import gc
import os

GC_THRESHOLD_VAR = "WARPSPEED_TEST_GC_THRESHOLD"
os.environ.setdefault(GC_THRESHOLD_VAR, "10000,50,100")
gc.set_threshold(*(int(x) for x in os.environ[GC_THRESHOLD_VAR].split(",")))
