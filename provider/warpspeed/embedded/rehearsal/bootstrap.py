"""Run a cluster's bootstrap actions on the rehearsal's node, as EMR runs them before applications start.

Each action's script is fetched from its ``s3://`` path (or taken from ``file:/`` on the node) and
run with its ``Args``, as they are, in the node's environment (:func:`~warpspeed.embedded.rehearsal.
command_runner.node_env`): Warp Speed's ``install_python_deps.sh --python /usr/bin/python3.11 ...``
really runs ``pip`` for the profile's interpreter, installing into the node's Python environment
(``PYTHONUSERBASE``), which the Spark executors, the drivers and the Python steps then import from.

All clusters of one rehearsal share one machine, so they share that environment: actions run one
at a time under a file lock, and after the first cluster ``pip`` finds its requirements satisfied.
Logs go where EMR puts them, ``<LogUri>/<cluster>/node/<instance>/bootstrap-actions/<n>/``.

A failing action ends the cluster as EMR does: ``TERMINATED_WITH_ERRORS``, code ``BOOTSTRAP_FAILURE``,
``On the master instance (<instance>), bootstrap action <n> returned a non-zero return code``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from warpspeed.embedded.rehearsal.command_runner import upload_logs
from warpspeed.embedded.rehearsal.processes import spawn, stop_group

PRIMARY_INSTANCE = "i-0rehearsal0primary"
"""The instance id the rehearsal's one node answers to in logs and messages."""


@dataclass(frozen=True)
class BootstrapFailure:
    """Why a cluster's bootstrap failed: EMR's cluster state change reason, and where the log is."""

    number: int
    name: str
    message: str
    log_prefix: str | None


def action_log_prefix(log_uri: str | None, cluster_id: str, number: int) -> str | None:
    """Return where EMR writes bootstrap action ``number``'s logs (1-based, the request's order)."""
    if not log_uri:
        return None
    base = log_uri.replace("s3n://", "s3://").rstrip("/")
    return f"{base}/{cluster_id}/node/{PRIMARY_INSTANCE}/bootstrap-actions/{number}"


def fetch_script(s3: Any, path: str, dest: Path) -> Path:
    """Copy a bootstrap script from ``s3://`` (or ``file:/`` on the node) to ``dest``, executable."""
    url = urlparse(path)
    if url.scheme in ("s3", "s3n", "s3a"):
        body = s3.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read()
    elif url.scheme == "file":
        body = Path(url.path).read_bytes()
    else:
        raise ValueError(f"bootstrap action path {path!r} is neither s3:// nor file:/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(body)
    dest.chmod(0o755)
    return dest


@dataclass
class BootstrapRun:
    """One cluster's bootstrap actions, run one after the other in the background."""

    cluster_id: str
    actions: Sequence[Mapping[str, Any]]
    folder: Path
    log_uri: str | None
    number: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start_next(self, s3: Any, env: Mapping[str, str], lock: Path, registry: Path) -> bool:
        """Start the next action (waiting for the machine's lock first); False when none is left."""
        if self.number >= len(self.actions):
            return False
        action = self.actions[self.number]
        self.number += 1
        folder = self.folder / str(self.number)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "controller").write_text(f"{action.get('Name')}: {action.get('ScriptPath')} {action.get('Args')}\n")
        try:
            script = fetch_script(s3, str(action.get("ScriptPath")), folder / Path(urlparse(
                str(action.get("ScriptPath"))).path).name)
        except Exception as err:  # EMR fails the node when it cannot download the script
            (folder / "stderr").write_text(f"could not download {action.get('ScriptPath')}: {err}\n")
            self.proc = None
            return True
        argv: Sequence[str] = ["flock", str(lock), str(script), *[str(a) for a in action.get("Args") or ()]]
        self.proc = spawn(argv, env=env, log=folder / "stdout", stderr=folder / "stderr", registry=registry,
                          cwd=folder)
        return True

    def poll(self, s3: Any) -> tuple[bool, BootstrapFailure | None]:
        """Return (finished, failure) for the action that runs; upload its logs once it ended."""
        if self.proc is not None and self.proc.poll() is None:
            return False, None
        code = self.proc.returncode if self.proc is not None else 1
        folder = self.folder / str(self.number)
        prefix = action_log_prefix(self.log_uri, self.cluster_id, self.number)
        upload_logs(s3, folder, prefix)
        if code == 0:
            return True, None
        name = str(self.actions[self.number - 1].get("Name"))
        message = (f"On the master instance ({PRIMARY_INSTANCE}), bootstrap action {self.number} "
                   "returned a non-zero return code")
        return True, BootstrapFailure(self.number, name, message, prefix)

    def stop(self) -> None:
        """Stop the action that runs (the cluster is being terminated)."""
        if self.proc is not None:
            stop_group(self.proc, timeout=5)
