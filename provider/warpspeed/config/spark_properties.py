"""Check a cluster profile's ``spark_defaults`` before EMR gets them (pure).

EMR writes the ``spark-defaults`` classification into spark-defaults.conf without looking at it.
Spark then ignores a key that does not start with ``spark.`` (one warning line in each step's log)
and fails every application at start on a size or number it cannot parse, so a typo in the profile
costs a cluster and every step of the window. The profile loader refuses both, naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SIZE = re.compile(r"^\d+\s*([kmgtp]i?b?|b)?$", re.IGNORECASE)
"""Spark's byte strings (``512m``, ``4g``, ``1024``): JavaUtils.byteStringAs."""
SIZE_KEYS = re.compile(
    r"^spark\.(driver|executor)\.(memory|memoryOverhead|maxResultSize)$|^spark\.executor\.pyspark\.memory$"
    r"|^spark\.(sql\.adaptive\.advisoryPartitionSizeInBytes|files\.maxPartitionBytes|kryoserializer\.buffer\.max)$"
)
INT_KEYS = re.compile(
    r"^spark\.(driver|executor)\.cores$|^spark\.executor\.instances$|^spark\.task\.(cpus|maxFailures)$"
    r"|^spark\.dynamicAllocation\.(min|max|initial)Executors$|^spark\.sql\.shuffle\.partitions$"
    r"|^spark\.default\.parallelism$"
)
BOOL_KEYS = re.compile(r"^spark\.[\w.]*\.enabled$")
RESERVED = {
    "spark.master": "EMR runs Spark on YARN; the master is the cluster's",
    "spark.submit.deployMode": "steps choose the deploy mode (cluster)",
}


def spark_defaults_problem(key: str, value: str) -> str | None:
    """Return why ``key: value`` cannot be a spark-defaults entry, or None when it can."""
    text = value.strip()
    checks = (
        (not key.startswith("spark.") or any(c.isspace() for c in key),
         f"{key!r} is not a Spark property (spark-defaults takes spark.* keys; Spark ignores others), "
         "e.g. spark.executor.memory"),
        (key in RESERVED, f"is reserved: {RESERVED.get(key)}"),
        (not text, "is empty"),
        (bool(SIZE_KEYS.match(key)) and not SIZE.match(text), f"={value!r} is not a size Spark reads (e.g. 4g, 512m)"),
        (bool(INT_KEYS.match(key)) and not text.isdigit(), f"={value!r} is not a whole number"),
        (bool(BOOL_KEYS.match(key)) and text.lower() not in ("true", "false"), f"={value!r} is not true or false"),
    )
    return next((why for failed, why in checks if failed), None)


def spark_defaults_problems(defaults: Mapping[str, str]) -> dict[str, str]:
    """Return ``{key: why}`` for every entry of ``defaults`` Spark would ignore or fail on."""
    found = {key: spark_defaults_problem(key, str(value)) for key, value in defaults.items()}
    return {key: why for key, why in found.items() if why is not None}
