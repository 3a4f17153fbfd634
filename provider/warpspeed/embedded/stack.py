"""The embedded stack: environment for Airflow subprocesses and one-time preparation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.settings import REPO_ROOT

AWS_CONN_ID = "warpspeed_aws"


def airflow_env(
    home: Path, sqs: LocalSqs | None, dags_folder: Path | None = None, *, db_url: str
) -> dict[str, str]:
    """Return the environment that runs Airflow against the embedded stack under ``home``.

    :param db_url: SQLAlchemy URL of Airflow's metadata database, e.g.
        :meth:`warpspeed.embedded.postgres.PostgresServer.sqlalchemy_url` of the embedded server.
    """
    airflow_home = home / "airflow"
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__WARPSPEED__HOME": str(home),
        "AIRFLOW__WARPSPEED__AWS_CONN_ID": AWS_CONN_ID,
        "WARPSPEED_HOME": str(home),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if sqs is not None:
        env |= {
            f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": sqs.airflow_connection(),
            "AIRFLOW__WARPSPEED__QUEUE_URL": sqs.queue_url,
            "AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL": sqs.dead_letter_queue_url,
        }
    return env


def airflow_bin() -> str:
    """Return the ``airflow`` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade the Airflow metadata database that ``env`` points at."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [airflow_bin(), "db", "migrate"], env=os.environ | env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def dags_test(dag_id: str, logical_date: str, env: dict[str, str], log_path: Path) -> int:
    """Run ``airflow dags test`` with its output in ``log_path``; return the exit code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(
            [airflow_bin(), "dags", "test", dag_id, logical_date],
            env=os.environ | env, stdout=fh, stderr=subprocess.STDOUT, check=False,
        )
    return proc.returncode
