"""Two Spark applications and pyiceberg commit to one scores table at the same moment (issue 12).

On the old embedded catalog (Iceberg's JDBC catalog on a SQLite file) the second writer failed
with ``SQLITE_BUSY`` and only a task retry minutes later got through. On the embedded REST
catalog (PostgreSQL behind it) a conflicting commit is rejected with 409 and the writer's
optimistic commit retries it on fresh metadata: every writer succeeds on its first attempt.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from warpspeed.compute.local.backend import LOCAL_SPARK_CONF, find_jars
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.ledger.commits import commit_with_retries
from warpspeed.ledger.tables import SCORES_TABLE, ensure_tables

pytestmark = pytest.mark.integration

ROWS = 40
SPARK_APP = """
import json, sys, time
from pathlib import Path
from pyspark.sql import SparkSession
from pyspark.sql.functions import lit

conf, jars, barrier, me = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
rows, tenants = int(sys.argv[5]), sys.argv[6:]
builder = SparkSession.builder.master("local[1]").appName("commit-" + me).config("spark.jars", jars)
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
table = "warpspeed.scores.account_scores"
target = spark.table(table).schema
(barrier / me).touch()
while len(list(barrier.iterdir())) < 3:  # both Spark apps and the pyiceberg writers are ready
    time.sleep(0.02)
for tenant in tenants:
    df = spark.range(rows).selectExpr(
        f"'{tenant}' AS tenant_id", "'churn_risk' AS model", "'v1' AS model_version",
        "concat('acct-', id) AS account_id", "rand() AS score", f"'{me}' AS batch_id",
        "current_timestamp() AS scored_at")
    for field in target.fields:
        if field.name not in df.columns:
            df = df.withColumn(field.name, lit(None).cast(field.dataType))
    df.select(*[f.name for f in target.fields]).writeTo(table).overwritePartitions()
print("COMMITTED", len(tenants), flush=True)
spark.stop()
"""


def test_spark_apps_and_pyiceberg_commit_to_one_table_at_once_first_attempt(
    tmp_path: Path, rest_catalog_for: Callable[[Path], object]
) -> None:
    home = tmp_path / "home"
    rest_catalog_for(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    catalog = settings.catalog.load()
    ensure_tables(catalog)
    snapshots_before = len(catalog.load_table(SCORES_TABLE).snapshots())
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    conf = LOCAL_SPARK_CONF | settings.catalog.spark_conf() | {
        "spark.sql.shuffle.partitions": "1", "spark.driver.memory": "512m"}
    jars = ",".join(str(j) for j in find_jars(settings.jars_dir))
    plan = {"app-a": [f"a-{i}" for i in range(4)], "app-b": [f"b-{i}" for i in range(4)]}
    apps = {
        name: subprocess.Popen(
            [sys.executable, "-c", SPARK_APP, json.dumps(conf), jars, str(barrier), name, str(ROWS), *tenants],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for name, tenants in plan.items()
    }

    import pyarrow as pa

    py_tenants = [f"p-{i}" for i in range(4)]
    errors: list[BaseException] = []

    def pyiceberg_writer(tenant: str) -> None:
        try:
            def append(table: object) -> None:
                arrow_schema = table.schema().as_arrow()  # type: ignore[attr-defined]
                rows = [{"tenant_id": tenant, "model": "churn_risk", "model_version": "v1",
                         "account_id": f"acct-{i}", "score": 0.5, "batch_id": "pyiceberg"} for i in range(ROWS)]
                table.append(pa.Table.from_pylist(rows, schema=arrow_schema))  # type: ignore[attr-defined]

            commit_with_retries(lambda: settings.catalog.load().load_table(SCORES_TABLE), append)
        except BaseException as err:  # collected and re-raised by the test thread
            errors.append(err)

    (barrier / "pyiceberg").touch()
    writers = [threading.Thread(target=pyiceberg_writer, args=(t,)) for t in py_tenants]
    while len(list(barrier.iterdir())) < 3:
        for name, proc in apps.items():
            assert proc.poll() is None, f"{name} exited before the barrier:\n{proc.stdout.read()[-4000:]}"  # type: ignore[union-attr]
        threading.Event().wait(0.05)
    for w in writers:
        w.start()
    outputs = {name: proc.communicate(timeout=600)[0] for name, proc in apps.items()}
    for w in writers:
        w.join(timeout=300)

    # every writer got through on its first (and only) run: no process or task retry
    for name, proc in apps.items():
        assert proc.returncode == 0, f"{name} failed:\n{outputs[name][-6000:]}"
        assert f"COMMITTED {len(plan[name])}" in outputs[name]
    assert not errors, errors

    table = settings.catalog.load().load_table(SCORES_TABLE)
    rows = table.scan(selected_fields=("tenant_id", "account_id")).to_arrow().to_pylist()
    per_tenant = Counter(r["tenant_id"] for r in rows)
    expected = [*plan["app-a"], *plan["app-b"], *py_tenants]
    assert per_tenant == dict.fromkeys(expected, ROWS)
    assert len(table.snapshots()) - snapshots_before == len(expected)
