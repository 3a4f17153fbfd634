"""Issue 24: ``kill -9`` of a running pytest leaves none of its servers or engines behind 60 s later."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.embedded.daemon import alive

BODY = Path(__file__).with_name("killed_session_body.py")


def test_kill_9_of_pytest_leaves_no_server_or_engine(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(BODY),
         f"--basetemp={tmp_path / 'inner'}"],
        cwd=REPO_ROOT, env=os.environ | {"KILLED_SESSION_PIDS": str(pids_file)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not pids_file.exists():
            assert proc.poll() is None, f"the inner pytest ended (exit {proc.returncode}) before it was killed"
            assert time.monotonic() < deadline, "the inner session never started its servers"
            time.sleep(0.5)
        pids = json.loads(pids_file.read_text())
        assert all(alive(pid) for pid in pids.values()), pids
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while running := {name: pid for name, pid in pids.items() if alive(pid)}:
            if time.monotonic() > deadline:
                pytest.fail(f"still running 60 s after kill -9 of pytest: {running}")
            time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.kill()
