"""The OpenLineage Spark listener in Warp Speed's Spark jobs: its conf, and the Airflow task as the parent job.

Active when Airflow's OpenLineage is (the provider installed and an ``[openlineage]`` transport
configured); otherwise every function here returns nothing and Spark runs as before.

- **Local runs** (:mod:`warpspeed.compute.local.backend`): the listener jar ``warpspeed setup`` puts in
  the jars folder (:data:`JAR_GLOB`), ``spark.extraListeners``, and Airflow's own HTTP transport,
  so the Spark applications' events reach the same backend as the tasks'.
- **Parent job**: each job a task starts carries the task's OpenLineage run as
  ``spark.openlineage.parent*`` / ``rootParent*`` (:func:`parent_conf`): a ``spark-submit`` run and
  an EMR step are one Spark application per job, so the application's events hang under the task.
  The warm local engine is one application shared by every task (its parent is fixed when it
  starts, the listener ignores later changes), so its jobs' events carry datasets but no task
  parent; the tasks' own events (:mod:`warpspeed.lineage.openlineage`) name the same tables.
- **EMR steps**: the parent job, plus the transport when ``[openlineage]
  spark_inject_transport_info`` is true (as the Amazon provider does for Glue); the listener and
  its jar come from the cluster profile's ``spark_defaults`` (docs/emr.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LISTENER_CLASS = "io.openlineage.spark.agent.OpenLineageSparkListener"
JAR_GLOB = "openlineage-spark_2.12-*.jar"
PACKAGE = "io.openlineage:openlineage-spark_2.12:1.53.0"
"""The listener for Spark 3.5 / Scala 2.12 (``spark.jars.packages`` on a cluster with Maven Central access)."""
CONF_PREFIX = "spark.openlineage."


def lineage_active() -> bool:
    """Tell whether Airflow's OpenLineage is installed and configured to emit."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()


def listener_jar(jars_dir: Path) -> Path | None:
    """Return the listener jar in ``jars_dir`` (the newest), or None."""
    found = sorted(jars_dir.glob(JAR_GLOB))
    return found[-1] if found else None


def _transport() -> dict[str, str]:
    from airflow.providers.common.compat.openlineage.utils.spark import (
        inject_transport_information_into_spark_properties,
    )

    return {k: str(v) for k, v in inject_transport_information_into_spark_properties({}, None).items()}  # type: ignore[arg-type]


def local_listener(jars_dir: Path) -> tuple[Path | None, dict[str, str]]:
    """Return the listener jar and the Spark conf that turn the listener on for local runs (none when off).

    Without the jar (``warpspeed setup`` fetches it) the listener stays off, with a warning.
    """
    if not lineage_active():
        return None, {}
    jar = listener_jar(jars_dir)
    if jar is None:
        log.warning("OpenLineage is on but %s has no %s (`warpspeed setup` fetches it): Spark runs without its "
                    "listener", jars_dir, JAR_GLOB)
        return None, {}
    from airflow.providers.openlineage.plugins.macros import lineage_job_namespace

    return jar, {"spark.extraListeners": LISTENER_CLASS, f"{CONF_PREFIX}namespace": lineage_job_namespace(),
                 **_transport()}


def parent_conf(context: Any, *, transport: bool = False) -> dict[str, str]:
    """Return the ``spark.openlineage.parent*`` conf naming the task of ``context`` (none when lineage is off).

    :param transport: add Airflow's HTTP transport too (EMR steps, when ``[openlineage]
        spark_inject_transport_info`` is true).
    """
    if not lineage_active() or context is None or context.get("ti") is None:
        return {}
    from airflow.providers.common.compat.openlineage.utils.spark import (
        inject_parent_job_information_into_spark_properties,
    )

    conf = {k: str(v) for k, v in inject_parent_job_information_into_spark_properties({}, context).items()}
    return conf | (_transport() if transport else {})


def step_conf(context: Any) -> dict[str, str]:
    """Return what an EMR step of the task of ``context`` gets: the parent, and the transport if configured."""
    if not lineage_active():
        return {}
    from airflow.providers.openlineage.conf import spark_inject_transport_info

    return parent_conf(context, transport=spark_inject_transport_info())


def without_lineage(conf: dict[str, str]) -> dict[str, str]:
    """Return ``conf`` less the ``spark.openlineage.*`` keys (the warm engine cannot change them per job)."""
    return {k: v for k, v in conf.items() if not k.startswith(CONF_PREFIX)}
