"""Shared fixtures: real servers on loopback (PostgreSQL, SQS, Iceberg REST), moto for control planes, Spark."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.s3 import EmbeddedS3
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import spark_archive
from warpspeed.embedded.control_planes import moto_server
from warpspeed.embedded.jvm import QUICK_JIT
from warpspeed.embedded.live import PARSE_INTERVAL_VAR
from warpspeed.embedded.postgres import PostgresServer, embedded_postgres
from warpspeed.embedded.rest_catalog import RestCatalogServer, rest_catalog_server
from warpspeed.embedded.s3_proxy import S3CountingProxy
from warpspeed.embedded.s3_server import S3Server, counting_proxy, s3_server
from warpspeed.embedded.server import die_with_parent
from warpspeed.embedded.sqs_server import LocalSqs, queues_on, sqs_server

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python UDF workers need the venv (pyarrow, mlflow)
# Every local Spark driver the tests start (sessions, spark-submit, warm engines, the live stacks'
# jobs, bench smoke runs) compiles with C1 only: their jobs are tiny, and C2's compiler threads were
# half of their CPU. The product keeps C2 for local Spark (QUICK_JIT says why); `make bench` measures that.
os.environ.setdefault("SPARK_SUBMIT_OPTS", QUICK_JIT)
# The live stacks the tests start (live tests, soak, bench_live's smoke run) parse each DAG file
# once at start and when asked (LiveStack.unpause_early_in_a_window): their DAG files never change, and
# the periodic parses were most of an idle stack's CPU (PARSE_INTERVAL_VAR says how much).
os.environ.setdefault(PARSE_INTERVAL_VAR, "3600")
# The provider never looks for jars in the checkout; the tests say where `make setup` put them.
os.environ.setdefault("WARPSPEED_JARS_DIR", str(REPO_ROOT / ".jars"))
# ... and each of those drivers maps Spark's classes from the archive `make setup` wrote (when it did).
os.environ.update(spark_archive.submit_opts(Path(os.environ["WARPSPEED_JARS_DIR"]), os.environ))
# py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after
# pytest closed the log handlers, which prints a "Logging error" traceback into CI output.
logging.getLogger("py4j").setLevel(logging.WARNING)

# pyspark 3.5's testing helpers (assertDataFrameEqual) still name ``np.NaN``, which NumPy 2
# removed; pyarrow 2x needs NumPy 2, so give the old alias back for the tests.
if not hasattr(np, "NaN"):
    np.NaN = np.nan  # type: ignore[attr-defined]


_SESSION_ENGINES: set[Path] = set()
"""State folders whose warm Spark engine serves the whole session (their fixture stops it)."""


@pytest.fixture(scope="session", autouse=True)
def _reap_engines_if_pytest_dies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run :mod:`tests.reaper`: it ends this session's warm Spark engines when pytest dies (even ``kill -9``)."""
    reaper = subprocess.Popen(
        die_with_parent([sys.executable, str(TESTS / "reaper.py"), str(tmp_path_factory.getbasetemp())]),
        stdin=subprocess.PIPE)
    try:
        yield
    finally:
        assert reaper.stdin is not None
        reaper.stdin.close()  # a normal end: it ends whatever engine is still running, then exits
        reaper.wait(timeout=60)


@pytest.fixture(scope="session")
def keep_warm_engine() -> Callable[[Path], None]:
    """Return a function that keeps a state folder's warm Spark engine after each module (its fixture stops it)."""
    return lambda home: _SESSION_ENGINES.add(home.resolve())


@pytest.fixture(scope="module", autouse=True)
def _stop_warm_spark_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stop the warm local Spark engines that a module's score jobs started in their state folders.

    After every module rather than once per session, so idle engines never pile up in memory;
    only the session's shared scoring folder keeps its engine.
    """
    yield
    for path in sorted(tmp_path_factory.getbasetemp().glob("**/run/spark-engine.json")):
        if (home := path.parent.parent.resolve()) not in _SESSION_ENGINES:
            stop_engine(home)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Run one embedded PostgreSQL server on loopback for the whole session (passwords, supervised)."""
    with tempfile.TemporaryDirectory(prefix="warpspeed-pg-") as tmp, embedded_postgres(Path(tmp) / "data") as server:
        yield server


@pytest.fixture(scope="session")
def airflow_template_db(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate one Airflow metadata database per session; tests get copies of it."""
    from warpspeed.embedded.airflow_db import ensure_airflow_db
    from warpspeed.embedded.stack import airflow_env

    name = postgres.create_database("airflow_template")
    env = airflow_env(tmp_path_factory.mktemp("airflow-template"), None, db_url=postgres.sqlalchemy_url(name))
    ensure_airflow_db(env)
    return name


@pytest.fixture(scope="session")
def new_airflow_db(postgres: PostgresServer, airflow_template_db: str) -> Callable[[], str]:
    """Return a function that makes a fresh, migrated Airflow metadata database and returns its URL."""

    def make() -> str:
        db = postgres.create_database(f"airflow_{uuid.uuid4().hex[:12]}", template=airflow_template_db)
        return postgres.sqlalchemy_url(db)

    return make


@pytest.fixture
def airflow_db_url(new_airflow_db: Callable[[], str]) -> str:
    """Return the URL of a fresh, migrated Airflow metadata database of this test's own."""
    return new_airflow_db()


@pytest.fixture(scope="session")
def jars_dir() -> Path:
    """Return the folder of jars ``make setup`` fetched (Spark runtime, server classpaths)."""
    return WarpSpeedSettings.from_mapping({}).jars_dir


@pytest.fixture(scope="session")
def sqs_endpoint(jars_dir: Path) -> Iterator[str]:
    """Run one real SQS server (ElasticMQ) on loopback for the whole session.

    Messages in memory only: the tests make fresh queues and never restart it, and message
    storage makes every operation write through to disk (1.2-1.9 times slower), which pushed
    2,000-message collects with a 4 s visibility timeout past it under load.
    ``tests/integration/test_embedded_servers.py`` tests the persisted server of the stack.
    """
    with sqs_server(jars_dir, persist=False) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Run one moto server on loopback for the session: the EMR, Glue and S3 control planes."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def sqs(sqs_endpoint: str) -> LocalSqs:
    """Return a fresh request queue and DLQ on the loopback server."""
    return queues_on(sqs_endpoint, f"req-{uuid.uuid4().hex[:12]}")


class SessionS3:
    """The session's S3 server with a counting proxy in front, as the embedded stack runs it."""

    def __init__(self, server: S3Server, proxy: S3CountingProxy) -> None:
        self.server, self.proxy = server, proxy

    @property
    def endpoint_url(self) -> str:
        """Return the URL clients use: the proxy's."""
        return self.proxy.endpoint_url

    def attach(self, home: Path) -> EmbeddedS3:
        """Give state folder ``home`` its bucket; its clients go through the proxy (requests counted)."""
        return self.server.attach(home, self.proxy.endpoint_url)


@pytest.fixture(scope="session")
def s3(jars_dir: Path) -> Iterator[SessionS3]:
    """Run one real S3 server (S3Proxy) on loopback for the whole session; each state folder gets a bucket."""
    with (
        tempfile.TemporaryDirectory(prefix="warpspeed-s3-") as tmp,
        s3_server(Path(tmp), jars_dir) as server,
        counting_proxy(server) as proxy,
    ):
        yield SessionS3(server, proxy)


_CATALOG_SCOPES: list[ExitStack] = []
"""The scopes open now, innermost last: the session's, the running module's, the running test's."""


class RestCatalogs:
    """The embedded REST catalogs of the session's state folders, one per folder.

    Calling it with a folder starts that folder's catalog (once) and stops it when the scope that
    asked first ends: a test's body or function fixtures, a module's fixtures, or, through
    :meth:`for_session`, the session. So only the catalogs still in use stay resident.
    """

    def __init__(self, postgres: PostgresServer, s3: SessionS3, jars_dir: Path, session: ExitStack) -> None:
        self.postgres, self.s3, self.jars_dir, self.session = postgres, s3, jars_dir, session
        self.running: dict[Path, RestCatalogServer] = {}

    def __call__(self, home: Path, *, s3_storage: bool = True) -> RestCatalogServer:
        """Return the running catalog of ``home``, started now (for the innermost open scope) if needed.

        The state folder gets its bucket on the session's S3 server (the embedded default: storage
        and warehouse in ``s3://``); ``s3_storage=False`` keeps its warehouse in ``<home>/warehouse``.
        """
        return self._start(home, _CATALOG_SCOPES[-1] if _CATALOG_SCOPES else self.session, s3_storage)

    def for_session(self, home: Path) -> RestCatalogServer:
        """Return the running catalog of ``home``, kept until the session ends."""
        return self._start(home, self.session, True)

    def _start(self, home: Path, scope: ExitStack, s3_storage: bool) -> RestCatalogServer:
        home = home.resolve()
        if home not in self.running:
            bucket = self.s3.attach(home) if s3_storage else None
            self.running[home] = scope.enter_context(
                rest_catalog_server(self.postgres, home, self.jars_dir, s3=bucket))
            scope.callback(self.running.pop, home)
        return self.running[home]


@contextmanager
def _catalog_scope() -> Iterator[None]:
    with ExitStack() as scope:
        _CATALOG_SCOPES.append(scope)
        try:
            yield
        finally:
            _CATALOG_SCOPES.remove(scope)


@pytest.fixture(scope="module", autouse=True)
def _module_catalogs() -> Iterator[None]:
    """Stop the REST catalogs that this module's fixtures started when the module ends."""
    with _catalog_scope():
        yield


@pytest.fixture(autouse=True)
def _test_catalogs() -> Iterator[None]:
    """Stop the REST catalogs that a test (its body, its function fixtures) started when it ends."""
    with _catalog_scope():
        yield


@pytest.fixture(scope="session")
def rest_catalog_for(postgres: PostgresServer, s3: SessionS3, jars_dir: Path) -> Iterator[RestCatalogs]:
    """Return the session's :class:`RestCatalogs`: call it with a state folder to run that folder's catalog."""
    with ExitStack() as session:
        yield RestCatalogs(postgres, s3, jars_dir, session)


@pytest.fixture(scope="session")
def warehouse_home(tmp_path_factory: pytest.TempPathFactory, rest_catalog_for: RestCatalogs) -> Path:
    """Return a state folder for the session's storage, with its embedded REST catalog running."""
    home = tmp_path_factory.mktemp("warpspeed-home")
    rest_catalog_for.for_session(home)
    return home


@pytest.fixture(scope="session")
def settings(warehouse_home: Path) -> WarpSpeedSettings:
    """Return settings pointing at the session's state folder (the embedded REST catalog)."""
    return WarpSpeedSettings.from_mapping({"home": str(warehouse_home)})


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory: pytest.TempPathFactory, rest_catalog_for: RestCatalogs) -> Path:
    """Return the state folder of the session's SparkSession, with its embedded REST catalog running."""
    home = tmp_path_factory.mktemp("spark-home")
    rest_catalog_for.for_session(home)
    return home


@pytest.fixture(scope="session")
def spark(spark_home: Path):  # type: ignore[no-untyped-def]
    """Return one local SparkSession with the Iceberg runtime and an embedded REST catalog of its own.

    The catalog lives in its own state folder (``spark_home``), so the transform tests' tables
    never meet the tables that ``spark-submit`` runs create in the ``settings`` catalog.
    """
    from pyspark.sql import SparkSession

    from warpspeed.compute.local.backend import LOCAL_SPARK_CONF, find_jars

    settings = WarpSpeedSettings.from_mapping({"home": str(spark_home)})
    jars = ",".join(str(p) for p in find_jars(REPO_ROOT / ".jars"))
    builder = SparkSession.builder.master("local[2]").appName("warpspeed-tests").config("spark.jars", jars)
    conf = LOCAL_SPARK_CONF | settings.catalog.spark_conf() | {"spark.sql.shuffle.partitions": "2"}
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def catalog_config(settings: WarpSpeedSettings) -> CatalogConfig:
    """Return the session's embedded catalog."""
    return settings.catalog


# Tiers: a test's folder gives its tier unless it carries a tier marker itself (pyproject.toml
# says what each proves). The unit tier may not ask for anything that starts a server or a JVM.
TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "live")
SERVER_FIXTURES = frozenset({
    "postgres", "airflow_template_db", "new_airflow_db", "airflow_db_url", "sqs_endpoint", "sqs", "moto_endpoint",
    "rest_catalog_for", "warehouse_home", "settings", "catalog_config", "spark", "spark_home",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier; refuse a unit test that needs a server, Spark or a JVM."""
    wrong = []
    for item in items:
        tier = next((t for t in TIERS if item.get_closest_marker(t)), None)
        if tier is None:
            folder = item.path.relative_to(TESTS).parts[0]
            tier = folder if folder in TIERS else "integration"
            item.add_marker(tier)
        if tier == "unit" and (needs := SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))):
            wrong.append(f"{item.nodeid} ({', '.join(sorted(needs))})")
    if wrong:
        raise pytest.UsageError("unit tests may not start servers, Spark or a JVM; mark them integration "
                                "or move them to tests/integration: " + "; ".join(wrong))
