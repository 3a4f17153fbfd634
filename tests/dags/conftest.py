"""The DAG bundle parsed once for the structure tests; one process for a test's ``airflow`` commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.paths import DAGS
from warpspeed.embedded.stack import DAGS_TEST_ENV


@pytest.fixture(scope="session")
def parse_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the (empty) state folder the bundle was parsed with."""
    return tmp_path_factory.mktemp("parse-home")


@pytest.fixture(scope="session")
def dagbag(parse_home: Path) -> Iterator[Any]:
    """Parse ``dags/`` once, as the DAG processor would, with every network connection refused."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    mp.setenv("WARPSPEED_HOME", str(parse_home))

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a DAG file opened a network connection at parse time: {args}")

    mp.setattr(socket.socket, "connect", no_network)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from airflow.dag_processing.dagbag import DagBag

            bag = DagBag(str(DAGS))
    finally:
        mp.undo()
    yield bag


RUNNER = r"""
import json, os, sys, traceback
from airflow.cli import cli_parser
from airflow.configuration import write_default_airflow_configuration_if_needed

write_default_airflow_configuration_if_needed()
parser = cli_parser.get_parser()
answers = os.fdopen(os.dup(1), "w", buffering=1)
for line in sys.stdin:
    request = json.loads(line)
    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = 0
    try:
        args = parser.parse_args(request["argv"])
        args.func(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        if isinstance(exc.code, str):
            print(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    answers.write(json.dumps({"code": code}) + "\n")
"""


class AirflowCommands:
    """One Python process that runs ``airflow`` commands one after another, as the CLI would.

    Airflow, the providers and the bundle are imported once rather than once per command; each
    command's output goes to its own log file.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(  # DAGS_TEST_ENV first, as warpspeed.embedded.stack.dags_test runs it
            [sys.executable, "-c", RUNNER], env=os.environ | DAGS_TEST_ENV | env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str], log_path: Path) -> tuple[int, str]:
        """Run ``airflow <argv>``; return its exit code and its output (also kept in ``log_path``)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log_path)}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        log = log_path.read_text(encoding="utf-8", errors="replace")
        assert answer, f"the airflow command process died (exit {self.proc.wait()}):\n{log[-6000:]}"
        return int(json.loads(answer)["code"]), log

    def close(self) -> None:
        """End the process (its standard input closes)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def airflow_commands() -> Iterator[Callable[[dict[str, str]], AirflowCommands]]:
    """Return a function that starts an :class:`AirflowCommands` process on an Airflow environment."""
    started: list[AirflowCommands] = []

    def start(env: dict[str, str]) -> AirflowCommands:
        started.append(AirflowCommands(env))
        return started[-1]

    yield start
    for commands in started:
        commands.close()
