"""The body of ``test_killed_pytest.py``: a session with servers and an engine, waiting to be killed.

Collected only when named on the command line (its name does not match ``test_*.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warpspeed.embedded.postgres import PostgresServer


def test_wait_to_be_killed(postgres: PostgresServer, sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory
                           ) -> None:
    run = tmp_path_factory.mktemp("home") / "run"
    run.mkdir()
    # as the warm engine does: a process that leads a session of its own and names itself in the discovery file
    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    (run / "spark-engine.json").write_text(json.dumps({"pid": engine.pid, "port": 0, "token": "", "fingerprint": ""}))
    pids = {"engine": engine.pid, "postgres": _listener_pid(postgres.port),
            "sqs": _listener_pid(int(sqs_endpoint.rsplit(":", 1)[1].split("/", maxsplit=1)[0]))}
    Path(os.environ["KILLED_SESSION_PIDS"]).write_text(json.dumps(pids))
    time.sleep(600)


def _listener_pid(port: int) -> int:
    import psutil

    return next(c.pid for c in psutil.net_connections(kind="inet") if c.laddr.port == port and c.status == "LISTEN")
