"""Issue 27: the embedded servers on a shared host, and after one of them dies.

One embedded stack (PostgreSQL, the REST catalog, ElasticMQ) of this module's own, so killing
its servers disturbs no other test: every listener is on 127.0.0.1; the catalog refuses a
request without the state folder's token and answers errors without a Java stack; PostgreSQL
refuses a login without a password and Airflow's role is no superuser; the state folder is
private; ElasticMQ SIGKILLed with requests queued keeps all of them (and its DLQ); PostgreSQL and
the catalog SIGKILLed come back on the same port and a pyiceberg read works again. Issue 24:
a process that started a stack is SIGKILLed, and none of its servers is left.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.sqs_server import LocalSqs, create_queues, listed_queue_names, sqs_process, stored_queue_names
from warpspeed.embedded.stack import EmbeddedStack, embedded_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, jars_dir: Path) -> Iterator[EmbeddedStack]:
    """Run an embedded stack of this module's own, with one table written through pyiceberg."""
    import pyarrow as pa

    home = tmp_path_factory.mktemp("servers-home")
    with embedded_stack(home, jars_dir) as running:
        catalog = WarpSpeedSettings.from_mapping({"home": str(home)}).catalog.load()
        catalog.create_namespace("probe")
        table = catalog.create_table("probe.t", schema=pa.schema([("n", pa.int64())]))
        table.append(pa.table({"n": [1, 2, 3]}))
        yield running


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def _listeners(pid: int) -> list[tuple[str, int]]:
    return [(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


def _back(server: ServerProcess, generation: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while server.generation <= generation or not server.alive:
        assert time.monotonic() < deadline, f"{server.name} not restarted in {timeout:.0f} s"
        time.sleep(0.5)


def _kill(stack: EmbeddedStack, name: str) -> tuple[ServerProcess, int]:
    server = stack.supervisor.servers[name]
    generation, pid = server.generation, server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return server, generation


def _scan(stack: EmbeddedStack) -> list[int]:
    catalog = WarpSpeedSettings.from_mapping({"home": str(stack.home)}).catalog.load()
    return sorted(catalog.load_table("probe.t").scan().to_arrow().column("n").to_pylist())


def test_every_listener_of_the_stack_is_on_loopback_on_the_recorded_port(stack: EmbeddedStack) -> None:
    servers = stack.supervisor.servers
    assert set(servers) == {"postgres", "rest-catalog", "sqs", "s3"}
    for name, server in servers.items():
        assert server.pid is not None
        assert _listeners(server.pid) == [("127.0.0.1", server.port)], name
    assert (stack.home / "postgres" / "port").read_text().strip() == str(stack.postgres.port)
    assert (stack.home / "catalog" / "port").read_text().strip() == str(servers["rest-catalog"].port)
    assert (stack.home / "sqs" / "port").read_text().strip() == str(servers["sqs"].port)
    assert (stack.home / "s3" / "port").read_text().strip() == str(servers["s3"].port)
    assert stack.s3 is not None  # the counting proxy: a thread of this process, on loopback too
    proxy_host, proxy_port = stack.s3.proxy.server.server_address[:2]
    assert (proxy_host, str(proxy_port)) == ("127.0.0.1", (stack.home / "s3" / "proxy-port").read_text().strip())


def test_state_folder_is_private(stack: EmbeddedStack) -> None:
    assert stack.home.stat().st_mode & 0o777 == 0o700
    for folder in ("run", "logs", "postgres", "catalog", "sqs", "s3", "s3/buckets"):
        assert (stack.home / folder).stat().st_mode & 0o777 == 0o700, folder
    for secret in ("postgres/superuser.pw", "postgres/app.pw", "catalog/rest-token", "catalog/rest-endpoint",
                   "sqs/elasticmq.conf", "postgres/server.log", "logs/rest-catalog.log", "sqs/elasticmq.log",
                   "s3/credentials.json", "s3/identity-stack.properties", "s3/s3proxy.log", "s3/endpoint"):
        assert (stack.home / secret).stat().st_mode & 0o777 == 0o600, secret


def test_catalog_refuses_a_request_without_the_token_and_shows_no_stack(stack: EmbeddedStack) -> None:
    uri, token = stack.catalog.uri, stack.catalog.token
    status, headers, body = _get(f"{uri}/v1/config")
    assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", "")
    assert json.loads(body)["error"]["type"] == "NotAuthorizedException"
    assert _get(f"{uri}/v1/config", {"Authorization": "Bearer not-the-token"})[0] == 401
    assert _get(f"{uri}/v1/config", {"Authorization": f"Bearer {token}"})[0] == 200
    basic = base64.b64encode(f"warpspeed:{token}".encode()).decode()
    assert _get(f"{uri}/v1/config", {"Authorization": f"Basic {basic}"})[0] == 200
    status, headers, body = _get(f"{uri}/v1/namespaces/nope/tables/x", {"Authorization": f"Bearer {token}"})
    error = json.loads(body)["error"]
    assert status == 404 and error["type"] == "NoSuchTableException" and "stack" not in error
    assert "Server" not in headers and " at org.apache" not in body
    log = (stack.home / "logs" / "rest-catalog.log").read_text()
    assert stack.postgres.password not in log and token not in log

    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import UnauthorizedError

    with pytest.raises(UnauthorizedError):
        load_catalog("anonymous", type="rest", uri=uri).list_namespaces()


def test_postgres_refuses_a_login_without_password_and_its_app_role_is_no_superuser(stack: EmbeddedStack) -> None:
    import psycopg2
    import psycopg2.errors

    pg = stack.postgres
    for user in ("postgres", pg.user):
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(host=pg.host, port=pg.port, user=user, dbname="postgres", connect_timeout=5)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(host=pg.host, port=pg.port, user=user, password="guess", dbname="postgres",
                             connect_timeout=5)
    conn = psycopg2.connect(pg.dsn("airflow"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False)
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone() == ("on",)
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT pg_read_file('/etc/passwd', 0, 10)")
    finally:
        conn.close()
    hba = (pg.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and {rule[-1] for rule in rules} == {"scram-sha-256"}


def _receive_all(client: Any, url: str) -> list[tuple[str, str]]:
    """Return (MessageId, body) of every message ``url`` delivers within a few seconds."""
    got: list[tuple[str, str]] = []
    for _ in range(10):
        batch = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       VisibilityTimeout=30).get("Messages", [])
        if not batch and got:
            return got
        got += [(m["MessageId"], m["Body"]) for m in batch]
    return got


def test_sqs_killed_with_requests_queued_loses_none_and_keeps_its_dlq(stack: EmbeddedStack) -> None:
    client = stack.sqs.client()
    queue_url, dlq_url = create_queues(client, "kill-me", max_receives=1)
    client.send_message(QueueUrl=queue_url, MessageBody="poison")
    received = client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"]
    client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=received[0]["ReceiptHandle"],
                                     VisibilityTimeout=0)
    assert client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []  # -> DLQ
    sent = [json.dumps({"request": i}) for i in range(6)]
    for body in sent:
        client.send_message(QueueUrl=queue_url, MessageBody=body)
    port = stack.supervisor.servers["sqs"].port
    server, generation = _kill(stack, "sqs")
    _back(server, generation)
    assert server.port == port
    assert sorted(body for _, body in _receive_all(client, queue_url)) == sorted(sent)  # same client, same URL
    # ElasticMQ 1.6.11 persists a redrive's copy into the DLQ but not its removal from the source:
    # after a restart the source holds a ghost that no consumer of it ever gets (above) and that the
    # next receive moves to the DLQ again, which may then deliver it twice under the same MessageId
    dead = _receive_all(client, dlq_url)
    assert {body for _, body in dead} == {"poison"} and len({message_id for message_id, _ in dead}) == 1


def test_a_restarted_sqs_server_is_ready_only_once_it_lists_every_stored_queue(
    tmp_path: Path, jars_dir: Path
) -> None:
    # ElasticMQ answers before it has restored its store: with 200 queues, the first ListQueues
    # after its first answer listed none of them (a client then gets QueueDoesNotExist)
    first = sqs_process(jars_dir, tmp_path / "sqs")
    first.spawn()
    first.wait_ready()
    try:
        client = LocalSqs(f"http://127.0.0.1:{first.port}", "", "").client()
        for i in range(200):
            client.create_queue(QueueName=f"q{i}")
        client.send_message(QueueUrl=client.get_queue_url(QueueName="q199")["QueueUrl"], MessageBody="stored")
    finally:
        first.kill()
        first.stop()  # waits until it is gone
    stored = stored_queue_names(jars_dir, tmp_path / "sqs" / "elasticmq-h2")
    assert len(stored) >= 199  # a queue created just before a SIGKILL may not be stored yet
    again = sqs_process(jars_dir, tmp_path / "sqs")
    again.spawn()
    try:
        again.wait_ready()
        assert stored <= (listed_queue_names(again.port) or frozenset())
    finally:
        again.stop()


def test_postgres_killed_comes_back_on_its_port_and_the_catalog_and_airflow_reconnect(stack: EmbeddedStack) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(stack.airflow_db_url, pool_pre_ping=True)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    server, generation = _kill(stack, "postgres")
    _back(server, generation)
    assert server.port == stack.postgres.port
    with engine.connect() as conn:  # the pooled connection died with the server: pre-ping replaces it
        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    assert _scan(stack) == [1, 2, 3]  # the catalog's JDBC pool reconnected
    engine.dispose()


def test_catalog_killed_comes_back_on_its_port_and_the_same_client_reads_again(stack: EmbeddedStack) -> None:
    catalog = WarpSpeedSettings.from_mapping({"home": str(stack.home)}).catalog.load()
    assert catalog.load_table("probe.t").scan().to_arrow().num_rows == 3
    server, generation = _kill(stack, "rest-catalog")
    _back(server, generation)
    assert f"http://127.0.0.1:{server.port}" == stack.catalog.uri
    assert sorted(catalog.load_table("probe.t").scan().to_arrow().column("n").to_pylist()) == [1, 2, 3]
    assert stack.supervisor.failed == {}


CHILD = """
import os, sys, time
from pathlib import Path
from warpspeed.embedded.stack import embedded_stack
with embedded_stack(Path(sys.argv[1]), Path(sys.argv[2])) as stack:
    print(" ".join(str(s.pid) for s in stack.supervisor.servers.values()), flush=True)
    time.sleep(3600)
"""


def _processes_of(home: Path) -> list[psutil.Process]:
    """Return the processes whose command line or environment names ``home``, and their children.

    PostgreSQL's backends write their status over their command line and environment, so they
    are found as children of the postmaster.
    """
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and (str(home) in " ".join(proc.info["cmdline"] or ())
                                            or str(home) in proc.environ().values()):
                found |= {p.pid: p for p in [proc, *proc.children(recursive=True)]}
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return list(found.values())


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Return those of ``procs`` still running (the same processes: psutil checks their start time)."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def test_servers_die_with_the_process_that_started_them(tmp_path: Path, jars_dir: Path) -> None:
    home = tmp_path / "orphan-home"
    env = os.environ | {"WARPSPEED_HOME": str(home)}
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(home), str(jars_dir)], env=env,
                              stdout=subprocess.PIPE, text=True)
    tracked: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 4, f"the stack did not start (exit {parent.poll()})"
        tracked = [p for p in _processes_of(home) if p.pid != parent.pid]
        assert set(pids) < {p.pid for p in tracked}, "servers or PostgreSQL's backends not found"
        parent.send_signal(signal.SIGKILL)  # as `kill -9` of a pytest run
        parent.wait()
        deadline = time.monotonic() + 60
        while (left := _running(tracked) + _processes_of(home)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], f"left behind 60 s after the parent's SIGKILL: {[(p.pid, p.name()) for p in left]}"
    finally:
        for proc in _running(tracked) + _processes_of(home):  # only if the test failed: what it started
            proc.kill()
        if parent.poll() is None:
            parent.kill()
