"""``make airflow``: a real Airflow 3 on the embedded stack, with a producer of scoring requests.

Starts the embedded servers (PostgreSQL for Airflow's metadata database and the catalog, the
Iceberg REST catalog server, the ElasticMQ SQS server), prepares the state folder (tables,
models, features, Airflow's database, a known admin password), then the four Airflow
components, each in its own process group: ``api-server``, ``scheduler`` (LocalExecutor),
``dag-processor`` and ``triggerer``. Only ``warpspeed_scoring`` is unpaused; its schedule
follows ``[warpspeed] window_minutes`` (``WINDOW_MINUTES`` here). A producer thread keeps
sending synthetic requests for both workloads, a few invalid ones among them. Ctrl-C (or
SIGTERM) stops everything it started.

:class:`LiveStack` is the reusable part: tests and soak runs start it as a context manager, read
:attr:`LiveStack.components` (each with its process handle), kill or restart components, and
query the REST API through :meth:`LiveStack.api`
(:class:`~warpspeed.embedded.airflow_rest.AirflowRestClient`).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from warpspeed.compute.local.engine import stop_engine
from warpspeed.embedded import seed
from warpspeed.embedded.airflow_db import airflow_bin, ensure_airflow_db
from warpspeed.embedded.airflow_rest import ADMIN_USER, SCORING_DAG, AirflowRestClient
from warpspeed.embedded.postgres import PostgresServer
from warpspeed.embedded.process_group import Component, Revival
from warpspeed.embedded.producer import Producer, ProducerConfig
from warpspeed.embedded.rest_catalog import RestCatalogServer, catalog_database, rest_catalog_server
from warpspeed.embedded.s3_server import LocalS3, embedded_s3
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.sqs_server import LocalSqs, local_sqs
from warpspeed.embedded.stack import airflow_env, embedded_stack, private_state_folder
from warpspeed.embedded.state import free_port, write_private
from warpspeed.embedded.supervisor import Supervisor

__all__ = ["LiveStack", "Producer", "ProducerConfig", "main"]

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_PRODUCER = ProducerConfig()
"""``make demo``'s load."""
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PARSE_INTERVAL_VAR = "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"
"""Seconds between two parses of a DAG file (Airflow's default, 30, unless set in the environment).

Each parse of each DAG file is a process that imports it: at 10 s an idle stack used 10.9 CPU
seconds a minute, and 3.4 at 300 s. Nothing waits for a periodic parse:
:meth:`LiveStack.unpause_early_in_a_window` asks for one
(:meth:`~warpspeed.embedded.airflow_rest.AirflowRestClient.reparse`)."""
EXECUTION_API_TIMEOUT_S = 60
"""Seconds a task waits for each execution-API answer (``[workers] execution_api_timeout``; Airflow's is 5)."""


class LiveStack(AirflowRestClient):
    """The embedded servers plus a real Airflow (four components) under one state folder.

    :param home: the Warp Speed state folder (``.warpspeed/`` for ``make airflow``).
    :param window_minutes: the scoring window length.
    :param port: the api-server's port (None: a free one).
    :param producer: what the producer sends; None starts no producer.
    :param extra_env: more environment for the Airflow components.
    :param unpause: unpause ``warpspeed_scoring`` once Airflow is up (else call :meth:`unpause`).
    :param postgres: a running PostgreSQL to use (the REST catalog of ``home`` and, unless
        ``db_url`` says otherwise, Airflow's database go on it); None starts the whole embedded
        stack of ``home`` (PostgreSQL in ``<home>/postgres``, kept across restarts).
    :param db_url: Airflow's metadata database (e.g. a migrated copy); None: the stack's own.
    :param sqs_env: given the SQS server once it runs, returns environment that overrides how the
        Airflow components reach it (``make soak`` points them at a fault-injecting proxy).
    :param tenants: tenants to seed in the features table; None: the producer's (4 without one).
    :param accounts: (fewest, spread) accounts per seeded tenant (see :func:`seed.accounts_for`).
    :param seed_data: seeds the tenants' tables, models and features elsewhere (``make rehearsal``); None: ``home``'s.
    :param revive: restart an Airflow component that exits on its own (the scheduler and the
        triggerer exit when PostgreSQL restarts), after 5 s, then 10 s, 20 s... at most 60 s.

    The servers' :class:`~warpspeed.embedded.supervisor.Supervisor` (:attr:`supervisor`) starts
    every server and every Airflow component from its own thread and restarts dead servers on
    their ports; if this process dies, all of them get a parent-death signal.
    """

    def __init__(
        self,
        home: Path,
        *,
        window_minutes: int = 2,
        port: int | None = None,
        producer: ProducerConfig | None = DEFAULT_PRODUCER,
        extra_env: dict[str, str] | None = None,
        unpause: bool = True,
        postgres: PostgresServer | None = None,
        db_url: str | None = None,
        sqs_env: Callable[[LocalSqs], dict[str, str]] | None = None,
        tenants: int | None = None,
        accounts: tuple[int, int] = (2000, 3000),
        seed_data: Callable[[list[str], tuple[int, int]], object] | None = None,
        revive: bool = True,
    ) -> None:
        self.home = home.resolve()
        self.window_minutes = window_minutes
        self.port = port or free_port()
        self.producer_config = producer
        self.extra_env = extra_env or {}
        self.unpause_at_start = unpause
        self.db_url = db_url
        self.postgres = postgres
        self.sqs_env = sqs_env
        self.seed_tenants, self.seed_accounts, self.seed_data = tenants, accounts, seed_data
        self.catalog: RestCatalogServer | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.components: dict[str, Component] = {}
        self.env: dict[str, str] = {}
        self.sqs: LocalSqs | None = None
        self.s3: LocalS3 | None = None
        self.producer: Producer | None = None
        self.tenants: list[str] = []
        self.supervisor: Supervisor | None = None
        self.revival: Revival | None = None
        self._revive = revive
        self._lock = threading.Lock()  # one start or stop of a component at a time (chaos, revival)
        self._exit = ExitStack()

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LiveStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the servers, prepare the state folder, start Airflow and the producer."""
        from warpspeed.config.settings import WarpSpeedSettings

        jars_dir = WarpSpeedSettings.from_mapping({"home": str(self.home)}).jars_dir
        if self.postgres is None:  # the whole embedded stack of this state folder
            servers = self._exit.enter_context(embedded_stack(self.home, jars_dir))
            self.postgres, self.sqs, self.catalog = servers.postgres, servers.sqs, servers.catalog
            self.s3 = servers.s3
            self.db_url = self.db_url or servers.airflow_db_url
            self.supervisor = servers.supervisor
        else:  # a PostgreSQL shared with others (tests): this folder's S3 server, catalog and queues on it
            private_state_folder(self.home)
            self.supervisor = sup = Supervisor("warpspeed-live")
            self._exit.callback(sup.close)
            self.s3 = self._exit.enter_context(embedded_s3(self.home, jars_dir, supervisor=sup))
            self.catalog = self._exit.enter_context(
                rest_catalog_server(self.postgres, self.home, jars_dir, sup, self.s3.endpoint))
            self.sqs = self._exit.enter_context(local_sqs(jars_dir, work_dir=self.home / "sqs", supervisor=sup))
            self.db_url = self.db_url or self.postgres.sqlalchemy_url(
                self.postgres.create_database("airflow_" + catalog_database(self.home).removeprefix("iceberg_"))
            )
        self.env = os.environ | self._airflow_env(self.sqs, self.db_url)
        if self.sqs_env is not None:
            self.env |= self.sqs_env(self.sqs)
        self._seed()
        ensure_airflow_db(self.env)
        logs = self.home / "airflow" / "logs" / "live"
        # scheduler and triggerer: no log server (Airflow binds it on every interface; the logs
        # are files under AIRFLOW_HOME, read by the api-server directly)
        argv = {"api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                "scheduler": ["scheduler", "--skip-serve-logs"], "triggerer": ["triggerer", "--skip-serve-logs"]}
        for name in COMPONENTS:
            self.components[name] = Component(name, [airflow_bin(), *argv.get(name, [name])], logs / f"{name}.log")
            self._spawn(self.components[name])
        self.wait_ready()
        if self._revive:
            self.revival = Revival(self.components, self._spawn, self._lock)
            self.supervisor.add_check(self.revival)
        if self.unpause_at_start:
            self.unpause(SCORING_DAG)
        if self.producer_config is not None:
            self.producer = Producer(self.sqs, self.tenants, self.producer_config, self.window_minutes)
            self.producer.start()

    def stop(self) -> None:
        """Stop the producer, every component (process groups and children) and the servers."""
        if self.revival is not None:
            self.revival.stopped.set()
        if self.producer is not None:
            self.producer.stopped.set()
            self.producer.join(timeout=30)
        with self._lock:  # a revival under way finishes first; none starts after this
            for name in ("scheduler", "triggerer", "dag-processor", "api-server"):
                if name in self.components:
                    self.components[name].stop()
        stop_engine(self.home)  # the warm local Spark engine the score tasks started
        self._exit.close()

    def restart(self, name: str) -> Component:
        """Stop one component (if still running) and start it again with the same settings."""
        component = self.components[name]
        with self._lock:
            component.stop()
            self._spawn(component)
        return component

    @property
    def servers(self) -> dict[str, ServerProcess]:
        """Return the servers the supervisor restarts, by name (not a PostgreSQL given to the constructor)."""
        return dict(self.supervisor.servers) if self.supervisor is not None else {}

    def _spawn(self, component: Component) -> None:
        """Start ``component`` from the supervisor's thread (its parent-death signal follows that thread)."""
        assert self.supervisor is not None
        self.supervisor.call(lambda: component.start(self.env))

    # -- preparation ---------------------------------------------------------------------------
    def _airflow_env(self, sqs: LocalSqs, db_url: str) -> dict[str, str]:
        airflow_home = self.home / "airflow"
        airflow_home.mkdir(parents=True, exist_ok=True, mode=0o700)
        secrets_file = airflow_home / "live_secrets.json"  # stable across restarts of the stack
        keys = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
        if any(len(keys.get(k, "")) < 86 for k in ("jwt", "api")):  # HS512 wants a key of 64 bytes or more
            keys = {k: secrets.token_urlsafe(64) for k in ("jwt", "api")}
            write_private(secrets_file, json.dumps(keys))
        return airflow_env(self.home, sqs, db_url=db_url) | {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__BASE_URL": f"{self.base_url}/",
            "AIRFLOW__API__SECRET_KEY": keys["api"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
            PARSE_INTERVAL_VAR: os.environ.get(PARSE_INTERVAL_VAR, "30"),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # The api-server's first execution-API call after it starts is cold: a task's ``run``
            # PATCH took 16.9 s, and 35.2 s at load 13-22, against Airflow's 5 s default. Past
            # the default's 5 tries the task fails and is retried; a shared host needs a longer wait.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": str(EXECUTION_API_TIMEOUT_S),
            "AIRFLOW__WARPSPEED__WINDOW_MINUTES": str(self.window_minutes),
        } | self.extra_env

    def _seed(self) -> None:
        from warpspeed.config.settings import WarpSpeedSettings
        from warpspeed.ledger.tables import ensure_tables

        self.tenants = seed.tenant_ids(self.seed_tenants or (self.producer_config or ProducerConfig(tenants=4)).tenants)
        if self.seed_data is not None:
            self.seed_data(self.tenants, self.seed_accounts)
            return
        settings = WarpSpeedSettings.from_mapping({"home": str(self.home)})
        ensure_tables(catalog := settings.catalog.load())
        seed.publish_seed_models(settings.storage_prefix, settings.storage())
        base, spread = self.seed_accounts
        seed.write_features(catalog, seed.feature_rows(self.tenants, base=base, spread=spread))

    def wait_ready(self, timeout: float = 300) -> None:
        """Wait until the api-server answers and the scheduler, triggerer and dag-processor beat."""
        self.admin_password  # noqa: B018  (write the passwords file before the api-server reads it)
        deadline = time.monotonic() + timeout
        wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        while True:
            dead = [c.name for c in self.components.values() if not c.alive]
            if dead:
                raise RuntimeError(f"Airflow component(s) {dead} exited; see {self.home / 'airflow/logs/live'}")
            if self.api_healthy(wanted):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow not healthy after {timeout:.0f} s; logs in {self.home / 'airflow/logs'}")
            time.sleep(2)

    def unpause_early_in_a_window(self, dag_id: str = SCORING_DAG, after_seconds: float = 3,
                                  slack: float = 10) -> float:
        """Unpause ``dag_id`` ``after_seconds`` into a window (up to ``slack`` later; else wait for the next one).

        The dag-processor stores the next run's date on every parse, so a parse after the window
        start (asked for here: :meth:`reparse`) makes the first scheduled run score the window
        that has just opened: its sensor then defers for the rest of the window.

        :return: how many seconds into the window it was unpaused (after the parse).
        """
        step = self.window_minutes * 60
        into = time.time() % step
        if not after_seconds <= into <= after_seconds + slack:
            time.sleep((after_seconds - into) % step)
        self.reparse(dag_id)
        self.unpause(dag_id)
        return time.time() % step


def _wait_forever(stack: LiveStack) -> Iterator[None]:
    """Print what the supervisor and the revival did (restarts, give-ups) as it happens."""
    shown = {"servers": 0, "airflow": 0}
    while True:
        for key, events in (("servers", stack.supervisor.events if stack.supervisor else []),
                            ("airflow", stack.revival.events if stack.revival else [])):
            for event in events[shown[key]:]:
                print(f"!! {event}", flush=True)
            shown[key] = len(events)
        yield
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    """Run the live stack until Ctrl-C."""
    from warpspeed.config.settings import default_home

    minutes = int(os.environ.get("WINDOW_MINUTES", "2"))
    port = int(os.environ["AIRFLOW_PORT"]) if os.environ.get("AIRFLOW_PORT") else None
    home = Path(os.environ.get("WARPSPEED_HOME") or default_home())

    def terminate(signum: int, frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        print("\nStopping Airflow and the embedded servers...", flush=True)
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    stack = LiveStack(home, window_minutes=minutes, port=port)
    print(f"Starting Airflow on the embedded stack (state in {stack.home}, {minutes}-minute windows)...",
          flush=True)
    try:
        with stack:
            print(f"\nAirflow UI   {stack.base_url}/   (Warp Speed dashboard: {stack.base_url}/warpspeed/)\n"
                  f"login        {ADMIN_USER} / {stack.admin_password}\n"
                  f"SQS          {stack.sqs.endpoint_url if stack.sqs else '-'}\n"
                  f"logs         {stack.home / 'airflow' / 'logs'}\n"
                  f"Producer sends ~{stack.producer_config.requests_per_window if stack.producer_config else 0} "
                  f"requests per {minutes}-minute window. Ctrl-C stops everything.\n", flush=True)
            for _ in _wait_forever(stack):
                pass
    except KeyboardInterrupt:
        pass
    print("Stopped; state kept in", stack.home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
