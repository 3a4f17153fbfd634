"""The DAG bundle parsed once for every structure test of ``tests/dags``."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.paths import DAGS


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

