"""Shared fixtures: real servers on loopback (PostgreSQL, SQS, Iceberg REST), moto for control planes, Spark."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from warpspeed.compute.local.engine import stop_engines_under
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.control_planes import moto_server
from warpspeed.embedded.postgres import PostgresServer, embedded_postgres
from warpspeed.embedded.rest_catalog import RestCatalogServer, rest_catalog_server
from warpspeed.embedded.sqs_server import LocalSqs, queues_on, sqs_server

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python UDF workers need the venv (pyarrow, mlflow)
# The provider never looks for jars in the checkout; the tests say where `make setup` put them.
os.environ.setdefault("WARPSPEED_JARS_DIR", str(REPO_ROOT / ".jars"))
# py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after
# pytest closed the log handlers, which prints a "Logging error" traceback into CI output.
logging.getLogger("py4j").setLevel(logging.WARNING)

# pyspark 3.5's testing helpers (assertDataFrameEqual) still name ``np.NaN``, which NumPy 2
# removed; pyarrow 2x needs NumPy 2, so give the old alias back for the tests.
if not hasattr(np, "NaN"):
    np.NaN = np.nan  # type: ignore[attr-defined]


@pytest.fixture(scope="module", autouse=True)
def _stop_warm_spark_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stop the warm local Spark engines that a module's score jobs started in their state folders.

    After every module rather than once per session, so idle engines never pile up in memory.
    """
    yield
    stop_engines_under(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Run one embedded PostgreSQL server on loopback for the whole session."""
    # Under /tmp rather than pytest's 0700 basetemp: as root the server runs as ``nobody``.
    with tempfile.TemporaryDirectory(prefix="warpspeed-pg-") as tmp, embedded_postgres(Path(tmp) / "data") as server:
        yield server


@pytest.fixture(scope="session")
def airflow_template_db(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate one Airflow metadata database per session; tests get copies of it."""
    from warpspeed.embedded.stack import airflow_env, ensure_airflow_db

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
    """Run one real SQS server (ElasticMQ) on loopback for the whole session."""
    with sqs_server(jars_dir) as endpoint:
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


@pytest.fixture(scope="session")
def rest_catalog_for(postgres: PostgresServer, jars_dir: Path) -> Iterator[Callable[[Path], RestCatalogServer]]:
    """Return a function that runs the embedded REST catalog of a state folder until the session ends."""
    with ExitStack() as stack:
        running: dict[Path, RestCatalogServer] = {}

        def start(home: Path) -> RestCatalogServer:
            home = home.resolve()
            if home not in running:
                running[home] = stack.enter_context(rest_catalog_server(postgres, home, jars_dir))
            return running[home]

        yield start


@pytest.fixture(scope="session")
def warehouse_home(tmp_path_factory: pytest.TempPathFactory, rest_catalog_for: Callable[[Path], object]) -> Path:
    """Return a state folder for the session's storage, with its embedded REST catalog running."""
    home = tmp_path_factory.mktemp("warpspeed-home")
    rest_catalog_for(home)
    return home


@pytest.fixture(scope="session")
def settings(warehouse_home: Path) -> WarpSpeedSettings:
    """Return settings pointing at the session's state folder (the embedded REST catalog)."""
    return WarpSpeedSettings.from_mapping({"home": str(warehouse_home)})


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory, rest_catalog_for: Callable[[Path], object]):  # type: ignore[no-untyped-def]
    """Return one local SparkSession with the Iceberg runtime and an embedded REST catalog of its own.

    The catalog lives in its own state folder, so the transform tests' tables never meet the
    tables that ``spark-submit`` runs create in the ``settings`` catalog.
    """
    from pyspark.sql import SparkSession

    from warpspeed.compute.local.backend import LOCAL_SPARK_CONF, find_jars

    home = tmp_path_factory.mktemp("spark-home")
    rest_catalog_for(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
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
    "rest_catalog_for", "warehouse_home", "settings", "catalog_config", "spark",
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
