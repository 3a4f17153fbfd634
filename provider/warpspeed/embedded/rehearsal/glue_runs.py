"""A Glue job run as the rehearsal runs it: ``spark-submit`` of the job's script with Glue's argument conventions.

What Glue documents and the translation keeps (emulated: Glue's workers; real: the script, Spark,
the arguments it sees):

* the run's arguments are DefaultArguments < run Arguments < NonOverridableArguments (moto merges
  them so);
* ``--conf`` carries every Spark setting in **one** value, ``k1=v1 --conf k2=v2 ...``; it becomes one
  ``--conf`` per setting;
* ``--extra-py-files``, ``--extra-jars``, ``--extra-files`` (comma lists) become ``--py-files``,
  ``--jars``, ``--files``; ``--scriptLocation`` overrides ``Command.ScriptLocation``;
* the script gets ``--JOB_ID``, ``--JOB_RUN_ID``, ``--JOB_NAME`` and every other ``--key value``
  (scripts read them with ``getResolvedOptions`` or ``argparse.parse_known_args``); Glue's own
  options (``--datalake-formats``, ``--job-language``, ...) are consumed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CONSUMED = frozenset({
    "--conf", "--extra-py-files", "--extra-jars", "--extra-files", "--scriptLocation", "--datalake-formats",
    "--job-language", "--additional-python-modules", "--python-modules-installer-option", "--user-jars-first",
    "--JOB_NAME",
})


def conf_items(packed: str) -> list[str]:
    """Split Glue's one ``--conf`` value (``k=v --conf k2=v2 ...``) into ``["k=v", "k2=v2", ...]``."""
    return [item for item in re.split(r"\s*--conf\s+", packed.strip().removeprefix("--conf").strip()) if item]


def glue_command(run: Mapping[str, Any]) -> list[str]:
    """Return the ``spark-submit`` command of a Glue job run (``job_name``, ``run_id``, ``arguments``, ``command``)."""
    args = dict(run["arguments"])
    script = args.get("--scriptLocation") or run["command"]["ScriptLocation"]
    cmd = ["spark-submit", "--name", run["job_name"]]
    for item in conf_items(args.get("--conf", "")):
        cmd += ["--conf", item]
    for glue_key, spark_key in (("--extra-py-files", "--py-files"), ("--extra-jars", "--jars"),
                                ("--extra-files", "--files")):
        if args.get(glue_key):
            cmd += [spark_key, args[glue_key]]
    cmd += [script, "--JOB_ID", f"j_{run['job_name']}", "--JOB_RUN_ID", run["run_id"], "--JOB_NAME", run["job_name"]]
    for key, value in args.items():
        if key.startswith("--") and key not in CONSUMED:
            cmd += [key, str(value)]
    return cmd


def glue_configurations(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the classifications of a Glue worker: Iceberg on when ``--datalake-formats`` names it."""
    formats = str(dict(run["arguments"]).get("--datalake-formats", ""))
    enabled = "true" if "iceberg" in formats else "false"
    return [{"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": enabled}}]
