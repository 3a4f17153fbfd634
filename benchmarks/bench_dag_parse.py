"""Seconds to import the whole DAG bundle in a fresh interpreter (what the DAG processor pays)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("WARPSPEED_BENCH_DAG_PARSE_RUNS", "3"))
"""Fresh interpreters timed (the size knob: the suite's smoke run uses one)."""
SCRIPT = """
import time, warnings
warnings.simplefilter("ignore")
t = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag({dags!r})
done = time.perf_counter()
assert not bag.import_errors, bag.import_errors
print("RESULT", done - imported, imported - t, len(bag.dags))
"""


def run() -> Iterator[dict]:
    """Measure DAG bundle import time over three fresh interpreters; report the median."""
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags")}
        samples = []
        for _ in range(RUNS):
            out = subprocess.run([sys.executable, "-c", SCRIPT.format(dags=str(REPO / "dags"))],
                                 env=env, capture_output=True, text=True, check=True).stdout
            out = next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1:]
            samples.append((float(out[0]), float(out[1]), int(out[2])))
    samples.sort()
    parse_s, airflow_import_s, dags = samples[len(samples) // 2]
    yield {"name": "dag_parse_s", "value": round(parse_s, 3), "unit": "s",
           "note": f"median of {len(samples)} fresh interpreters, {dags} DAGs; Airflow's own import "
                   f"({airflow_import_s:.2f} s) excluded"}
