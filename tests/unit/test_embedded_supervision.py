"""The embedded servers' plumbing, without a JVM or PostgreSQL: private state, ports, the launch chain, supervision."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from warpspeed.embedded.jvm import http_answers
from warpspeed.embedded.process_group import Component, Revival
from warpspeed.embedded.server import ServerError, ServerProcess, die_with_parent
from warpspeed.embedded.state import free_port, port_held_by, private_dir, secret, stable_port, write_private
from warpspeed.embedded.supervisor import Supervisor, supervised


def test_private_dir_and_files_are_for_this_user_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # as an older Warp Speed left it
    assert private_dir(home).stat().st_mode & 0o777 == 0o700
    assert private_dir(home / "a" / "b").stat().st_mode & 0o777 == 0o700
    path = write_private(home / "f", "x")
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_text() == "x"
    write_private(path, "y")
    assert path.read_text() == "y" and [p.name for p in home.iterdir() if p.name.startswith(".")] == []


def test_a_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = secret(tmp_path / "token")
    assert len(first) >= 43 and (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert secret(tmp_path / "token") == first
    assert secret(tmp_path / "other") != first
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ValueError, match="fewer than 16"):
        secret(tmp_path / "short")


def test_a_port_is_recorded_once_and_kept_unless_another_program_took_it(tmp_path: Path) -> None:
    record = tmp_path / "port"
    port = stable_port(record)
    assert record.read_text().strip() == str(port) and stable_port(record) == port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        moved = stable_port(record)
    assert moved != port and record.read_text().strip() == str(moved)


def test_the_launch_chain_sets_the_parent_death_signal_and_execs() -> None:
    argv = die_with_parent(["sleep", "30"], signal.SIGINT)
    assert argv[1:] == ["--pdeathsig=INT", "--", "sleep", "30"] and Path(argv[0]).name == "setpriv"
    proc = subprocess.Popen(argv)
    try:
        _wait_for(lambda: Path(f"/proc/{proc.pid}/exe").resolve().name == "sleep", 10)  # exec'd: no setpriv left
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def _http_server(tmp_path: Path, port: int, name: str = "web") -> ServerProcess:
    """A stand-in server: Python's http.server on a fixed loopback port."""
    return ServerProcess(
        name=name, command=lambda: [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        port=port, log_path=tmp_path / f"{name}.log", ready=lambda: http_answers(f"http://127.0.0.1:{port}/"),
        ready_timeout=60,
    )


def _wait_for(predicate: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_supervisor_restarts_a_killed_server_on_the_same_port(tmp_path: Path) -> None:
    restarted: list[str] = []
    supervisor = Supervisor(poll=0.1, on_restart=lambda s: restarted.append(s.name))
    try:
        server = supervisor.start_server(_http_server(tmp_path, free_port()))
        assert server.generation == 1 and http_answers(f"http://127.0.0.1:{server.port}/")
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: server.generation == 2)
        assert server.pid != first and http_answers(f"http://127.0.0.1:{server.port}/")
        assert restarted == ["web"] and any("is back on port" in e for e in supervisor.events)
        assert (tmp_path / "web.log").stat().st_mode & 0o777 == 0o600
    finally:
        supervisor.close()
    assert not server.alive


def test_supervisor_gives_up_after_too_many_restarts(tmp_path: Path) -> None:
    supervisor = Supervisor(poll=0.05, max_restarts=2, window=300)
    try:
        server = supervisor.start_server(_http_server(tmp_path, free_port()))
        for generation in (1, 2):  # two restarts are allowed...
            assert server.pid is not None
            os.kill(server.pid, signal.SIGKILL)
            _wait_for(lambda g=generation: server.generation > g)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)  # ...a third is not
        _wait_for(lambda: "web" in supervisor.failed)
        assert not server.alive and server.generation == 3
        assert "gave up after 2 restarts" in supervisor.failed["web"]
    finally:
        supervisor.close()


def test_a_server_that_exits_before_it_is_ready_fails_the_start_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('no luck'); raise SystemExit(3)"]
    broken = ServerProcess(name="broken", command=lambda: argv, port=free_port(), log_path=tmp_path / "broken.log",
                           ready=lambda: False)
    supervisor = Supervisor()
    try:
        with pytest.raises(ServerError, match=r"(?s)broken exited \(3\).*no luck"):
            supervisor.start_server(broken)
        assert "broken" not in supervisor.servers
    finally:
        supervisor.close()


def test_a_port_another_server_took_before_ours_bound_it_is_replaced_not_trusted(tmp_path: Path) -> None:
    # another stack's HTTP server took the recorded port between our check and our server's bind: its
    # answers must not count as ours (a bench's CreateQueue once reached an S3 server that way)
    record = tmp_path / "port"
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        threading.Thread(target=lambda: other.accept()[0].sendall(b"HTTP/1.0 200 OK\r\n\r\n"), daemon=True).start()
        record.write_text(f"{taken}\n")
        described: list[int] = []

        def describe() -> tuple[ServerProcess, int]:
            port = taken if not described else stable_port(record)  # the first start skips the check: the race
            described.append(port)
            return _http_server(tmp_path, port), port

        with supervised(describe, None, "race") as port:
            assert described == [taken, port] and port != taken and record.read_text().strip() == str(port)
            assert http_answers(f"http://127.0.0.1:{port}/")
        assert port_held_by(taken, os.getpid()) is True


def test_a_server_that_runs_on_after_a_failed_bind_is_restarted_on_another_port(tmp_path: Path) -> None:
    # ElasticMQ logs "Address already in use" and runs on, never ready: the wait must not last the whole
    # ready timeout and fail, but start it again on a new port (a wheel user's stack failed so in CI)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()  # listens, never answers
        taken = other.getsockname()[1]
        described: list[int] = []

        def describe() -> tuple[ServerProcess, int]:
            if not described:
                described.append(taken)
                stubborn = ServerProcess(
                    name="web", command=lambda: [sys.executable, "-c", "import time; time.sleep(600)"],
                    port=taken, log_path=tmp_path / "stubborn.log",
                    ready=lambda: http_answers(f"http://127.0.0.1:{taken}/"), ready_timeout=60)
                return stubborn, taken
            described.append(free_port())
            return _http_server(tmp_path, described[-1]), described[-1]

        with supervised(describe, None, "race") as port:
            assert described == [taken, port] and port != taken
            assert http_answers(f"http://127.0.0.1:{port}/")


def test_servers_started_by_the_supervisor_die_with_its_thread(tmp_path: Path) -> None:
    supervisor = Supervisor()
    server = supervisor.start_server(_http_server(tmp_path, free_port()))
    supervisor.closing.set()  # the thread ends without stopping the server: the kernel does it
    supervisor.join(timeout=10)
    assert server.proc is not None
    assert server.proc.wait(timeout=30) == -signal.SIGTERM


def test_revival_restarts_a_component_that_exited_on_its_own_after_a_pause(tmp_path: Path) -> None:
    component = Component("scheduler", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log")
    started: list[str] = []

    def start(c: Component) -> None:
        started.append(c.name)
        c.start(dict(os.environ))

    revival = Revival({"scheduler": component}, start, threading.Lock(), first_pause=0.2)
    start(component)
    try:
        revival()
        assert started == ["scheduler"]  # alive: left alone
        assert component.proc is not None
        component.proc.kill()
        component.proc.wait()
        revival()
        assert started == ["scheduler"]  # down for less than the pause
        time.sleep(0.3)
        revival()
        assert started == ["scheduler", "scheduler"] and component.alive
        assert revival.events and "restarted (restart 1)" in revival.events[0]
        revival.stopped.set()
        component.proc.kill()
        component.proc.wait()
        time.sleep(0.3)
        revival()
        assert started == ["scheduler", "scheduler"]  # stopped: nothing restarts any more
    finally:
        component.stop(timeout=5)
