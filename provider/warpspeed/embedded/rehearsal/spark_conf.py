"""A cluster's ``Configurations`` as the files EMR writes on its nodes, in one SPARK_CONF_DIR per cluster.

EMR turns classifications into ``/etc/spark/conf``: ``spark-defaults`` into spark-defaults.conf,
``spark-env``'s nested ``export`` into ``export K=V`` lines of spark-env.sh (which ``spark-submit``
sources), ``spark-log4j2`` into log4j2.properties. Here ``core-site`` becomes ``spark.hadoop.*``
keys (the same effect for Spark) and ``iceberg-defaults`` with ``iceberg.enabled=true`` puts the
Iceberg runtime and AWS bundle on the driver and executor classpath, as EMR does from
``/usr/share/aws/iceberg/lib``. YARN, HDFS and EMRFS classifications have no standalone
counterpart and are reported as ignored. The steps' own arguments are never touched: ``spark-submit``
reads this folder through ``SPARK_CONF_DIR``, as it reads /etc/spark/conf on EMR.

:func:`node_overlay` adds what an EMR node has that a standalone worker lacks (emulated, named so
in docs/emr.md): the master URL, client deploy mode, ``s3://`` through Hadoop's s3a (EMRFS on EMR),
the external shuffle service's stand-in for dynamic allocation, the node's size and its JVM options
(C1 only, :data:`~warpspeed.embedded.jvm.QUICK_JIT`; a profile's own replace them, as on EMR).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.embedded.jvm import QUICK_JIT

log = logging.getLogger(__name__)



@dataclass
class SparkConfDir:
    """What a cluster's classifications say, ready to be written as a SPARK_CONF_DIR."""

    defaults: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    log4j2: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    iceberg: bool = False

    def write(self, folder: Path, base_log4j2: str) -> Path:
        """Write spark-defaults.conf, spark-env.sh and log4j2.properties into ``folder``; return it."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in sorted(self.defaults.items())))
        (folder / "spark-env.sh").write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(self.env.items())))
        (folder / "log4j2.properties").write_text(base_log4j2 + "".join(f"{k} = {v}\n" for k, v in
                                                                          sorted(self.log4j2.items())))
        return folder


def from_configurations(configurations: Sequence[Mapping[str, Any]]) -> SparkConfDir:
    """Apply EMR classifications in order (a later one wins on the same key, as on EMR)."""
    out = SparkConfDir()
    for item in configurations or ():
        name = str(item.get("Classification"))
        props = {str(k): str(v) for k, v in (item.get("Properties") or {}).items()}
        if name == "spark-defaults":
            out.defaults.update(props)
        elif name == "spark-env":
            for nested in item.get("Configurations") or ():
                if nested.get("Classification") == "export":
                    out.env.update({str(k): str(v) for k, v in (nested.get("Properties") or {}).items()})
        elif name == "spark-log4j2":
            out.log4j2.update(props)
        elif name == "core-site":
            out.defaults.update({f"spark.hadoop.{k}": v for k, v in props.items()})
        elif name == "iceberg-defaults":
            out.iceberg = props.get("iceberg.enabled", "false").lower() == "true"
        else:
            out.ignored.append(name)
    return out


@dataclass(frozen=True)
class Node:
    """What every node of the rehearsal has: the master, the jars EMR ships, the S3 endpoint, the size.

    :param jars: the node's extra classpath: hadoop-aws and its SDK (s3a), and, for clusters with
        ``iceberg.enabled``, the Iceberg Spark runtime and AWS bundle.
    :param executor_memory: a worker's memory (every executor gets it).
    """

    master_url: str
    s3_endpoint: str
    hadoop_jars: tuple[str, ...]
    iceberg_jars: tuple[str, ...]
    executor_memory: str = "1g"
    driver_memory: str = "1g"


def node_overlay(conf: SparkConfDir, node: Node) -> SparkConfDir:
    """Add the node-level settings an EMR node has and a standalone worker lacks (see the module doc)."""
    d = conf.defaults
    d["spark.master"] = node.master_url  # EMR: yarn
    d["spark.submit.deployMode"] = "client"  # standalone runs Python drivers in client mode only
    jars = ":".join((*node.hadoop_jars, *(node.iceberg_jars if conf.iceberg else ())))
    for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath"):
        d[key] = ":".join(x for x in (d.get(key), jars) if x)
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        d.setdefault(key, QUICK_JIT)  # the node's own JVM options, replaced by a profile's (as EMR's are)
    if d.get("spark.dynamicAllocation.enabled") == "true":  # YARN has an external shuffle service here
        d.setdefault("spark.dynamicAllocation.shuffleTracking.enabled", "true")
    sizes = {"spark.executor.memory": node.executor_memory, "spark.executor.cores": "1",
             "spark.driver.memory": node.driver_memory, "spark.driver.cores": "1"}
    resized = {k: (d[k], v) for k, v in sizes.items() if k in d and d[k] != v}
    if resized:
        log.info("node size: %s", ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(resized.items())))
    d.update(sizes)
    for scheme in ("s3", "s3n", "s3a"):  # EMRFS answers s3:// and s3n:// on EMR
        d[f"spark.hadoop.fs.{scheme}.impl"] = "org.apache.hadoop.fs.s3a.S3AFileSystem"
    d.update({
        "spark.hadoop.fs.s3a.endpoint": node.s3_endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        # keep parent "directory" markers: S3Proxy's folder store answers 500 to deleting a marker whose
        # folder holds objects, and s3a retries that for minutes after every write (Hadoop 3.3.1+)
        "spark.hadoop.fs.s3a.directory.marker.retention": "keep",
        # the node's credentials come from its environment (the instance profile's stand-in)
        "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    })
    return conf


def conf_dir_for(
    configurations: Sequence[Mapping[str, Any]], node: Node, folder: Path, base_log4j2: str,
) -> SparkConfDir:
    """Write the SPARK_CONF_DIR of a cluster with ``configurations`` into ``folder``; return what was written."""
    conf = node_overlay(from_configurations(configurations), node)
    conf.write(folder, base_log4j2)
    if conf.ignored:
        log.info("classifications without a standalone counterpart (ignored): %s", ", ".join(conf.ignored))
    return conf
