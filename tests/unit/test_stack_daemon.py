"""`warpspeed stack env|status|down|up` on a state folder's record of its background stack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from warpspeed.embedded import daemon
from warpspeed.exceptions import WarpSpeedConfigError

SERVERS = {"sqs": "http://127.0.0.1:4001", "catalog": "http://127.0.0.1:4002"}


def _record(home: Path, pid: int) -> None:
    daemon._write_state(home, {"pid": pid, "home": str(home), "started_at": "2026-12-04T10:00:00+00:00",
                               "servers": SERVERS, "env": {"AIRFLOW_HOME": str(home / "airflow"),
                                                           "AIRFLOW_CONN_WARPSPEED_AWS": '{"a": "it\'s"}'}})


def test_env_prints_export_lines_a_shell_evaluates(tmp_path: Path) -> None:
    _record(tmp_path, os.getpid())
    assert daemon.state_path(tmp_path).stat().st_mode & 0o777 == 0o600  # it holds the database password
    dags = tmp_path / "bundle" / "dags"
    (dags / "config").mkdir(parents=True)
    (dags / "config" / "workloads.yaml").write_text("workloads: {}\n")
    text = daemon.env_lines(tmp_path, dags, tmp_path / "jars")
    shown = subprocess.run(["bash", "-c", f"{text}\nenv"], capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    assert env["AIRFLOW_CONN_WARPSPEED_AWS"] == '{"a": "it\'s"}'
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == env["WARPSPEED_DAGS_FOLDER"] == str(dags)
    assert env["AIRFLOW__WARPSPEED__JARS_DIR"] == str(tmp_path / "jars")
    # `airflow dags test` of the scoring DAG with its Deadline Alert exits 1 after a successful run (3.3.2)
    assert env["AIRFLOW__WARPSPEED__WINDOW_DEADLINE_MINUTES"] == "0"
    assert text.startswith(f"# the embedded stack of {tmp_path} (pid {os.getpid()})")
    assert daemon.status(tmp_path) == 0


def test_a_record_left_by_a_dead_process_means_no_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    _record(tmp_path, proc.pid)
    assert daemon.read_state(tmp_path) is None
    assert daemon.status(tmp_path) == 3
    assert daemon.down(tmp_path) == 0
    assert f"no stack runs for {tmp_path}" in capsys.readouterr().out
    with pytest.raises(WarpSpeedConfigError, match="start it with `warpspeed stack up`"):
        daemon.env_lines(tmp_path, None, tmp_path)


def test_up_wants_the_jars_first(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="run `warpspeed setup` first"):
        daemon.up(tmp_path / "home", tmp_path / "no-jars")
    assert not (tmp_path / "home" / "logs").exists()


def test_the_state_file_is_json_with_what_clients_need(tmp_path: Path) -> None:
    _record(tmp_path, os.getpid())
    state = json.loads(daemon.state_path(tmp_path).read_text())
    assert {"pid", "home", "servers", "env", "started_at"} <= set(state)
    assert "catalog     http://127.0.0.1:4002" in daemon.describe(state)


def test_the_demo_is_refused_while_the_background_stack_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from warpspeed.cli import main

    monkeypatch.setenv("WARPSPEED_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__WARPSPEED__HOME", raising=False)
    _record(tmp_path, os.getpid())
    assert main(["demo"]) == 2
    assert "`warpspeed stack down` first" in capsys.readouterr().err
