"""Class-data sharing for local Spark: each driver JVM maps Spark's classes from one archive.

A local Spark driver (a ``SparkSession``'s gateway, ``spark-submit``, the warm engine) loads
and verifies thousands of classes from pyspark's jars before it runs anything. ``make setup``
(``python -m warpspeed.embedded.spark_archive``) runs one small Spark job (an Iceberg table
written, merged and read, a Python UDF) with ``-XX:ArchiveClassesAtExit`` and keeps what it
loaded in ``<jars_dir>/cds/spark-<key>.jsa``; :func:`submit_opts` adds
``-XX:SharedArchiveFile`` to ``SPARK_SUBMIT_OPTS`` so that later drivers map those classes
instead. The key covers the JDK, pyspark's jars and the jars Warp Speed adds. Only the test
suite sets that option so far (``tests/conftest.py``), so ``warpspeed setup`` does not spend
the job's 30 CPU seconds on a user's machine.

The JVM checks that the archive fits (same JDK, same jars, same classpath) and runs without it
otherwise (``-Xshare:auto``, the default). Spark puts ``SPARK_CONF_DIR`` first on the
classpath: a driver started with one of its own (the rehearsal's clusters) does not use the
archive, which is why the catalog's secrets reach Spark as a properties file
(:mod:`warpspeed.config.catalog_secrets`), not as a ``SPARK_CONF_DIR``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from warpspeed.embedded.class_archive import ClassArchive
from warpspeed.embedded.jvm import QUICK_JIT, java_bin
from warpspeed.exceptions import WarpSpeedConfigError

log = logging.getLogger(__name__)

ARCHIVE_OPTION = "-XX:SharedArchiveFile="
TRAINING_JOB = """
import sys
from pyspark.sql import SparkSession, functions as F
from pyspark.sql.types import DoubleType

warehouse = sys.argv[1]
spark = (SparkSession.builder.master("local[2]").appName("warpspeed-class-archive")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
         .config("spark.sql.catalog.w", "org.apache.iceberg.spark.SparkCatalog")
         .config("spark.sql.catalog.w.type", "hadoop")
         .config("spark.sql.catalog.w.warehouse", warehouse).getOrCreate())
rows = spark.range(200).select(F.concat(F.lit("t-"), (F.col("id") % 4).cast("string")).alias("tenant_id"),
                               F.col("id").cast("string").alias("account_id"), (F.col("id") / 7).alias("x"))
spark.sql("CREATE TABLE w.db.scores (tenant_id string, account_id string, score double) USING iceberg "
          "PARTITIONED BY (tenant_id)")
score = F.udf(lambda x: x * 2.0, DoubleType())
rows.select("tenant_id", "account_id", score("x").alias("score")).writeTo("w.db.scores").append()
rows.createOrReplaceTempView("updates")
spark.sql("MERGE INTO w.db.scores t USING (SELECT tenant_id, account_id, x AS score FROM updates) u "
          "ON t.tenant_id = u.tenant_id AND t.account_id = u.account_id WHEN MATCHED THEN UPDATE SET *")
counts = spark.table("w.db.scores").groupBy("tenant_id").agg(F.count("*"), F.avg("score")).collect()
assert len(counts) == 4, counts
spark.stop()
"""


def _spark_jars() -> list[Path]:
    import pyspark

    return sorted((Path(pyspark.__file__).resolve().parent / "jars").glob("*.jar"))


def _archive(jars_dir: Path) -> ClassArchive:
    from warpspeed.compute.local.backend import find_jars

    return ClassArchive("spark", java_bin(), [*_spark_jars(), *find_jars(jars_dir)], jars_dir)


def archive_path(jars_dir: Path) -> Path:
    """Return where the archive of local Spark with the jars of ``jars_dir`` goes."""
    return _archive(jars_dir).path


def submit_opts(jars_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Return ``SPARK_SUBMIT_OPTS`` with the archive added (empty when there is none, or it is there already)."""
    current = environ.get("SPARK_SUBMIT_OPTS", "")
    if ARCHIVE_OPTION in current:
        return {}
    try:
        path = archive_path(jars_dir)
    except (WarpSpeedConfigError, OSError):  # no jars, no java: the driver reports that itself
        return {}
    return {"SPARK_SUBMIT_OPTS": f"{current} {ARCHIVE_OPTION}{path}".strip()} if path.is_file() else {}


def write_archive(jars_dir: Path) -> Path:
    """Run the training job once and keep its archive (nothing if the archive exists); return its path."""
    from warpspeed.compute.local.backend import find_jars, spark_submit_path

    archive = _archive(jars_dir)
    if archive.path.is_file():
        return archive.path
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_CONF_DIR", "PYSPARK_SUBMIT_ARGS")}
    env |= {"SPARK_SUBMIT_OPTS": " ".join([QUICK_JIT, *archive.jvm_args()]), "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1"}
    with tempfile.TemporaryDirectory(prefix="warpspeed-class-archive-") as work:
        script = Path(work) / "train.py"
        script.write_text(TRAINING_JOB)
        command = [str(spark_submit_path()), "--jars", ",".join(str(j) for j in find_jars(jars_dir)), str(script),
                   f"file://{work}/warehouse"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    archive.finish(done.returncode)  # kept if the job exited cleanly, else its partial file is deleted
    if not archive.path.is_file():
        log.warning("no class archive for local Spark (exit %s): %s", done.returncode, done.stderr[-2000:])
    return archive.path


def main(argv: list[str] | None = None) -> int:
    """Write the archive for the jars folder ``--jars-dir`` (nothing if it exists); print its path."""
    parser = argparse.ArgumentParser(prog="python -m warpspeed.embedded.spark_archive")
    parser.add_argument("--jars-dir", type=Path, required=True)
    path = write_archive(parser.parse_args(argv).jars_dir)
    print(f"class archive of local Spark: {path}" if path.is_file() else f"no class archive of local Spark ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
