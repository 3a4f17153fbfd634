"""What ``command-runner.jar`` finds on an EMR primary node: the node's environment, its commands, its logs.

A step's ``Args`` run as they are: ``Args[0]`` is looked up on the node's ``PATH`` and gets
``Args[1:]``. The ``PATH`` starts with the rehearsal's ``bin/`` (emulated, named so in docs/emr.md):

* ``spark-submit``: EMR's, on the standalone master. It changes one thing, ``--deploy-mode cluster``
  into ``client`` (standalone refuses cluster mode for Python applications), drops ``--master yarn``
  (the master comes from spark-defaults.conf), records the command it runs in
  ``$WARPSPEED_STEP_DIR/spark-submit.argv`` and ``exec``s pyspark's ``spark-submit``;
* ``aws``: the AWS CLI's ``aws s3 cp`` (the only call the product's steps make), with boto3.

The node's environment (:func:`node_env`) is the instance profile's stand-in: credentials,
region, the S3 endpoint, and the node's Python environment
(``PYTHONUSERBASE``: where the bootstrap's ``pip`` installs for the profile's interpreter). The
Airflow worker's own virtualenv, ``PYTHONPATH`` and Spark settings never reach a node process.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

SPARK_SUBMIT = r"""#!/bin/bash
# command-runner.jar's spark-submit in the rehearsal: EMR's command on a standalone master.
# Rewrites --deploy-mode cluster to client (standalone runs Python drivers in client mode only),
# drops --master yarn (spark-defaults.conf names the master); everything else is passed as it is.
set -euo pipefail
out=()
app=""
while [ "$#" -gt 0 ]; do
  if [ -z "$app" ]; then
    case "$1" in
      --deploy-mode) out+=("--deploy-mode" "client"); shift 2; continue ;;
      --deploy-mode=*) out+=("--deploy-mode=client"); shift; continue ;;
      --master) if [ "${2:-}" = yarn ]; then shift 2; continue; fi ;;
      --verbose|-v|--supervise) out+=("$1"); shift; continue ;;
      -*) out+=("$1" "${2:-}"); shift; [ "$#" -gt 0 ] && shift; continue ;;
      *) app="$1" ;;
    esac
  fi
  out+=("$1"); shift
done
if [ -n "${WARPSPEED_STEP_DIR:-}" ]; then
  printf '%s\0' spark-submit "${out[@]}" > "$WARPSPEED_STEP_DIR/spark-submit.argv"
fi
exec "$SPARK_HOME/bin/spark-submit" "${out[@]}"
"""

AWS_CLI = '''#!{python}
"""The AWS CLI's `aws s3 cp [--only-show-errors] SRC DST` in the rehearsal (boto3; nothing else)."""
import sys
from urllib.parse import urlparse

import boto3

args = [a for a in sys.argv[1:] if a not in ("--only-show-errors", "--quiet")]
if args[:2] != ["s3", "cp"] or len(args) != 4:
    sys.exit(f"the rehearsal's aws supports only 's3 cp SRC DST', got {{sys.argv[1:]}}")
src, dst = args[2], args[3]
s3 = boto3.client("s3")
try:
    if src.startswith("s3://"):
        url = urlparse(src)
        s3.download_file(url.netloc, url.path.lstrip("/"), dst)
    else:
        url = urlparse(dst)
        s3.upload_file(src, url.netloc, url.path.lstrip("/"))
except Exception as err:
    sys.exit(f"fatal error: {{err}}")
'''

DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "CONDA_PREFIX")
DROPPED_PREFIXES = ("SPARK_", "PYSPARK_", "AIRFLOW", "WARPSPEED_", "AWS_", "PYICEBERG_", "MLFLOW_")


@dataclass(frozen=True)
class NodeIdentity:
    """Where a node's AWS calls go and with what credentials (the instance profile's stand-in)."""

    access_key: str
    secret_key: str
    region: str
    s3_endpoint: str
    control_plane: str


def node_env(
    identity: NodeIdentity, *, bin_dir: Path, python_home: Path, base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of every process on the rehearsal's nodes (see the module doc).

    :param python_home: the node Python's ``PYTHONUSERBASE``: what the bootstrap installs lands here.
    """
    source = dict(os.environ if base is None else base)
    venv_bins = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    path = [p for p in source.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p and p not in venv_bins]
    env = {k: v for k, v in source.items() if k not in DROPPED and not k.startswith(DROPPED_PREFIXES)}
    return env | {
        "PATH": os.pathsep.join([str(bin_dir), *path]),
        "AWS_ACCESS_KEY_ID": identity.access_key,
        "AWS_SECRET_ACCESS_KEY": identity.secret_key,
        "AWS_REGION": identity.region,
        "AWS_DEFAULT_REGION": identity.region,
        "AWS_ENDPOINT_URL_S3": identity.s3_endpoint,
        "AWS_ENDPOINT_URL_EMR": identity.control_plane,
        "AWS_ENDPOINT_URL_GLUE": identity.control_plane,
        "PYTHONUSERBASE": str(python_home),
        "PIP_USER": "1",  # pip installs into PYTHONUSERBASE, never into the machine's Python
        "PIP_BREAK_SYSTEM_PACKAGES": "1",  # the machine's Python is "externally managed" (PEP 668)
        "WARPSPEED_BOOTSTRAP_SUDO": "",  # the node's Python environment belongs to the rehearsal's user
    }


def install_commands(bin_dir: Path) -> Path:
    """Write the node's ``spark-submit`` and ``aws`` into ``bin_dir``; return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("spark-submit", SPARK_SUBMIT), ("aws", AWS_CLI.format(python=sys.executable))):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    return bin_dir


ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)(: |$)")


def root_cause(output: str, limit: int = 1500) -> str:
    """Return what EMR's ``FailureDetails.Message`` carries: the lines that say why the step failed.

    Spark's ``Job aborted due to stage failure`` line (it names ``ExecutorLostFailure`` when nodes
    were lost), else ``Exception in thread "main"``, plus the last ``SomeError: message`` line (a
    Python traceback's end; a PySpark driver's traceback comes on spark-submit's stdout), plus any
    ``warpspeed ...:`` line a Warp Speed script printed to explain itself.
    """
    lines = output.splitlines()
    found: list[str] = []
    for pattern in (r"Job aborted due to stage failure.*", r"Exception in thread \"main\".*"):
        hits = [m.group(0) for line in lines if (m := re.search(pattern, line))]
        if hits:
            found.append(hits[-1])
            break
    last = next((line.strip() for line in reversed(lines) if ERROR_LINE.match(line.strip())), None)
    if last and not any(last in f for f in found):
        found.append(last)
    found += [line.strip() for line in lines if line.startswith("warpspeed ") and ":" in line][-2:]
    if not found:
        found = [line.strip() for line in lines if line.strip()][-1:] or ["no output"]
    return " | ".join(found)[:limit]


def read_output(folder: Path) -> str:
    """Return a step's stdout and stderr, one after the other."""
    return "".join((folder / f).read_text(errors="replace") for f in ("stdout", "stderr") if (folder / f).exists())


def write_controller(folder: Path, jar: str, args: list[str]) -> None:
    """Record what command-runner ran: ``controller`` (as EMR's log) and ``argv.json`` (exactly)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "argv.json").write_text(json.dumps({"jar": jar, "args": args}))
    (folder / "controller").write_text(f"INFO startExec '{jar} {' '.join(args)}'\n")


def upload_logs(s3: Any, folder: Path, prefix: str | None, names: tuple[str, ...] = ("controller", "stdout", "stderr"),
                ) -> str | None:
    """Gzip a step's logs to ``<prefix>/<name>.gz`` (EMR's layout); return the stderr object's URI (None: not kept)."""
    if not prefix:
        return None
    url = urlparse(prefix)
    for name in names:
        if (folder / name).exists():
            try:
                s3.put_object(Bucket=url.netloc, Key=f"{url.path.strip('/')}/{name}.gz",
                              Body=gzip.compress((folder / name).read_bytes()))
            except Exception as err:  # a missing log bucket must not hide the step's outcome
                log.warning("could not upload %s to %s: %s", name, prefix, err)
                return None
    return f"{prefix.rstrip('/')}/{names[-1]}.gz"
