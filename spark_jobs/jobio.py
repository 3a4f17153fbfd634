"""I/O shared by the Spark entry points: small documents and Iceberg snapshot ids.

Documents go through Hadoop's FileSystem API, so ``s3://`` and ``file://`` both work.
"""

from __future__ import annotations

import json
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


def read_document(spark: Any, uri: str, schema: str) -> dict[str, Any]:
    """Return the JSON document at ``uri``, refusing one that is not of ``schema``."""
    doc = json.loads(read_text(spark, uri))
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise ValueError(f"{uri} is not a {schema} document")
    return doc


def current_snapshot_id(spark: Any, table: str) -> int | None:
    """Return the table's current (main branch) snapshot id, or None if it has none.

    Asks the Iceberg table object through the catalog (one metadata refresh) instead of
    querying the ``refs`` metadata table, which would plan and run a Spark job.
    """
    jvm = spark.sparkContext._jvm
    iceberg_table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table)
    iceberg_table.refresh()
    snapshot = iceberg_table.currentSnapshot()
    return None if snapshot is None else int(snapshot.snapshotId())
