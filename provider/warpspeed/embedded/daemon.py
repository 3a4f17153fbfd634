"""``warpspeed stack up|down|env|status``: the embedded servers of a state folder, in the background.

``up`` starts a detached process (``python -m warpspeed.embedded.daemon``, a session of its own,
so closing the terminal does not stop it) that owns the stack exactly as ``make demo`` does,
through :func:`warpspeed.embedded.stack.embedded_stack`: the S3 server (S3Proxy, where tables,
models and documents live), PostgreSQL, the Iceberg REST catalog on it and the SQS server,
started and watched by one supervisor that restarts a server that dies, on its port. Before it
says it is ready it creates Airflow's metadata database (``airflow db migrate``), so ``airflow
dags test`` works at once. It records what clients need in
``<home>/run/stack.json`` (0600: it holds the database password) and runs until ``down`` sends
it SIGTERM; then it stops the servers and the warm Spark engine the tasks started, and removes
that file. Its log is ``<home>/logs/stack.log``.

``env`` prints that environment as ``export`` lines for ``eval "$(warpspeed stack env)"``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warpspeed.embedded.state import write_private
from warpspeed.exceptions import WarpSpeedConfigError

STATE_FILE = Path("run") / "stack.json"
LOG_FILE = Path("logs") / "stack.log"
UP_TIMEOUT_S = 900.0
"""How long ``up`` waits for a first start (``airflow db migrate`` on a new database is most of it)."""


def state_path(home: Path) -> Path:
    """Return the file that describes the running stack of ``home``."""
    return home / STATE_FILE


def read_state(home: Path) -> dict[str, Any] | None:
    """Return the running stack's description, or None when no stack of ``home`` runs."""
    try:
        state = json.loads(state_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if alive(int(state.get("pid", 0))) else None


def alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists (and is not a zombie of ours)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _write_state(home: Path, state: dict[str, Any]) -> None:
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(state, indent=1, sort_keys=True))


def up(home: Path, jars_dir: Path, timeout: float = UP_TIMEOUT_S) -> int:
    """Start the stack of ``home`` in the background unless it runs; wait until it is ready."""
    running = read_state(home)
    if running is not None:
        print(f"the stack of {home} runs already (pid {running['pid']}): {describe(running)}")
        return 0
    if not (jars_dir / ".fetched").is_file():
        raise WarpSpeedConfigError(f"no jars in {jars_dir}: run `warpspeed setup` first (Maven, Java 17)")
    log = home / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    state_path(home).unlink(missing_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "warpspeed.embedded.daemon", "--home", str(home), "--jars-dir", str(jars_dir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    print(f"starting the embedded stack of {home} (pid {proc.pid}, log {log})", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(home)
        if state is not None and state.get("pid") == proc.pid:
            print(describe(state))
            print('environment for the Airflow CLI and warpspeed commands: eval "$(warpspeed stack env)"')
            return 0
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
            print(f"the stack did not start (exit {proc.returncode}); the end of {log}:\n{tail}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    proc.terminate()
    print(f"the stack was not ready after {timeout:.0f} s; stopped it (see {log})", file=sys.stderr)
    return 1


def down(home: Path, timeout: float = 120.0) -> int:
    """Stop the stack of ``home`` (servers, warm Spark engine) and wait until it is gone."""
    state = read_state(home)
    if state is None:
        print(f"no stack runs for {home}")
        return 0
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            print(f"the stack (pid {pid}) did not stop within {timeout:.0f} s; see {home / LOG_FILE}",
                  file=sys.stderr)
            return 1
        time.sleep(0.3)
    print(f"stopped the stack of {home} (pid {pid})")
    return 0


def status(home: Path) -> int:
    """Print whether the stack of ``home`` runs; exit code 0 if it does, 3 if not."""
    state = read_state(home)
    if state is None:
        print(f"no stack runs for {home}")
        return 3
    print(describe(state))
    return 0


def describe(state: dict[str, Any]) -> str:
    """Return one line per server of a running stack."""
    return "\n".join([f"stack of {state['home']} up since {state['started_at']} (pid {state['pid']})",
                      *(f"  {name:<11} {where}" for name, where in sorted(state["servers"].items()))])


def env_lines(home: Path, dags: Path | None, jars_dir: Path) -> str:
    """Return ``export`` lines of the running stack's environment, the DAG folder and the jars folder.

    The lines are for the Airflow CLI (``airflow dags test``): they leave out the window deadline
    alert (:data:`~warpspeed.embedded.stack.DAGS_TEST_ENV`).
    """
    from warpspeed.embedded.stack import DAGS_TEST_ENV

    state = read_state(home)
    if state is None:
        raise WarpSpeedConfigError(f"no stack runs for {home}: start it with `warpspeed stack up`")
    folder = (dags or Path(os.environ.get("WARPSPEED_DAGS_FOLDER") or "dags")).resolve()
    env = dict(state["env"]) | DAGS_TEST_ENV | {
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder), "WARPSPEED_DAGS_FOLDER": str(folder),
        "AIRFLOW__WARPSPEED__JARS_DIR": str(jars_dir), "WARPSPEED_JARS_DIR": str(jars_dir),
    }
    lines = [f"# the embedded stack of {home} (pid {state['pid']}); " + "; ".join(
        f"{name} {where}" for name, where in sorted(state["servers"].items()))]
    lines.append("# no window deadline alert (it needs a scheduler; with one, `airflow dags test` exits 1 on "
                 "Airflow 3.3.2: apache/airflow#73428)")
    if not (folder / "config" / "workloads.yaml").is_file():
        lines.append(f"# {folder} holds no config/workloads.yaml: pass --dags, or run in a `warpspeed init` folder")
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    return "\n".join(lines)


def serve(home: Path, jars_dir: Path) -> int:
    """Own the stack of ``home`` until SIGTERM, SIGINT or SIGHUP (the background process of :func:`up`)."""
    from warpspeed.compute.local.engine import stop_engine
    from warpspeed.embedded.airflow_db import ensure_airflow_db
    from warpspeed.embedded.stack import embedded_stack

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    print(f"{datetime.now(UTC).isoformat()} starting the servers of {home}", flush=True)
    try:
        with embedded_stack(home, jars_dir) as stack:
            env = stack.airflow_env()
            env.pop("AIRFLOW__CORE__DAGS_FOLDER", None)  # `stack env` names the folder it is asked for
            print(f"{datetime.now(UTC).isoformat()} servers up; creating or upgrading Airflow's metadata database "
                  "(airflow db migrate)", flush=True)
            ensure_airflow_db(env)
            servers = {"postgresql": f"127.0.0.1:{stack.postgres.port}", "sqs": stack.sqs.endpoint_url,
                       "catalog": stack.catalog.uri, "queue": stack.sqs.queue_url}
            if stack.s3 is not None:
                servers["s3"] = f"{stack.s3.endpoint.endpoint_url} (bucket {stack.s3.endpoint.bucket})"
            _write_state(home, {"pid": os.getpid(), "home": str(home), "jars_dir": str(jars_dir), "env": env,
                                "servers": servers, "started_at": datetime.now(UTC).isoformat(timespec="seconds")})
            print(f"{datetime.now(UTC).isoformat()} ready: {servers}", flush=True)
            stop.wait()
            print(f"{datetime.now(UTC).isoformat()} stopping", flush=True)
    finally:
        state_path(home).unlink(missing_ok=True)
        stop_engine(home)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the background process (started by :func:`up`)."""
    parser = argparse.ArgumentParser(prog="python -m warpspeed.embedded.daemon")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--jars-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return serve(args.home.resolve(), args.jars_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
