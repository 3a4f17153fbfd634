"""I/O shared by the Spark entry points: small documents and Iceberg snapshots.

Documents go through Hadoop's FileSystem API, so ``s3://`` and ``file://`` both work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Table properties of the scores tables Warp Speed creates (Spark job, single-node engine, seed).
#: Scores and entity keys are nearly all distinct, so a dictionary of them only grows until Parquet
#: gives up on it; a 4 KiB limit gives up after a few hundred values and writes them plain, while
#: the constant columns (tenant, model, version, batch, time) still fit a dictionary.
SCORES_TABLE_PROPERTIES = {"format-version": "2", "write.parquet.dict-size-bytes": "4096"}


def _fs_and_path(spark: Any, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def read_text(spark: Any, uri: str) -> str:
    """Return the text of the document at ``uri``."""
    fs, path = _fs_and_path(spark, uri)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    stream = fs.open(path)
    try:
        jvm = spark.sparkContext._jvm
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def write_text(spark: Any, uri: str, text: str) -> None:
    """Write ``text`` to ``uri`` through a temporary name and a rename (atomic on HDFS/local)."""
    fs, path = _fs_and_path(spark, uri)
    jvm = spark.sparkContext._jvm
    tmp = jvm.org.apache.hadoop.fs.Path(path.getParent(), f".{path.getName()}.tmp")
    out = fs.create(tmp, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    if fs.exists(path):
        fs.delete(path, False)
    if not fs.rename(tmp, path):
        raise OSError(f"could not move {tmp} to {uri}")


def copy_to_local(spark: Any, uri: str, dest: str) -> None:
    """Copy the folder (or file) at ``uri`` to the local path ``dest`` through Hadoop's FileSystem."""
    fs, path = _fs_and_path(spark, uri)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    fs.copyToLocalFile(False, path, spark.sparkContext._jvm.org.apache.hadoop.fs.Path(f"file://{dest}"), True)


def read_document(spark: Any, uri: str, schema: str) -> dict[str, Any]:
    """Return the JSON document at ``uri``, refusing one that is not of ``schema``."""
    doc = json.loads(read_text(spark, uri))
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise ValueError(f"{uri} is not a {schema} document")
    return doc


@dataclass(frozen=True)
class SnapshotStats:
    """A table's current snapshot: its id and the size of its data (from the snapshot summary)."""

    snapshot_id: int
    records: int
    data_files: int
    files_bytes: int
    open_file_cost: int
    """The table's ``read.split.open-file-cost`` (Iceberg's default 4 MiB): a small file's read weight."""


def current_snapshot(spark: Any, table: str) -> SnapshotStats | None:
    """Return the table's current (main branch) snapshot and its data size, or None if it has none.

    Asks the Iceberg table object through the catalog (one metadata refresh) instead of
    querying the ``refs`` metadata table, which would plan and run a Spark job.
    """
    jvm = spark.sparkContext._jvm
    iceberg_table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table)
    iceberg_table.refresh()
    snapshot = iceberg_table.currentSnapshot()
    if snapshot is None:
        return None
    summary = snapshot.summary()

    def number(key: str, default: int = 0) -> int:
        value = summary.get(key)
        return int(value) if value is not None else default

    cost = iceberg_table.properties().get("read.split.open-file-cost")
    return SnapshotStats(int(snapshot.snapshotId()), number("total-records"), number("total-data-files"),
                         number("total-files-size"), int(cost) if cost is not None else 4 << 20)


def current_snapshot_id(spark: Any, table: str) -> int | None:
    """Return the table's current (main branch) snapshot id, or None if it has none."""
    stats = current_snapshot(spark, table)
    return None if stats is None else stats.snapshot_id
