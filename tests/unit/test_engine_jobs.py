"""The warm engine's job table: a resubmitted job attaches to a running or completed one, never reruns it."""

from __future__ import annotations

import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from warpspeed.compute.local.engine_server import Engine, ThreadRouter

PACKAGE = "warpspeed_engine_jobs_fixture"
JOB = '''
import threading
release = threading.Event()

def run(spark, argv):
    """Wait for the test's release when asked to; exit with argv[0]."""
    if "--hold" in argv:
        release.wait(30)
    return int(argv[0])
'''


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """Yield an engine on a mock SparkSession whose zip holds one job script, ``job.py``."""
    zip_path = tmp_path / "jobs.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr(f"{PACKAGE}/__init__.py", "")
        zf.writestr(f"{PACKAGE}/job.py", JOB)
    sys.path.insert(0, str(zip_path))
    try:
        yield Engine(mock.MagicMock(), zip_path, 60.0, ThreadRouter(sys.stderr))
    finally:
        sys.path.remove(str(zip_path))
        for name in [n for n in sys.modules if n.startswith(PACKAGE)]:
            del sys.modules[name]


def submit(engine: Engine, tmp_path: Path, name: str, *args: str) -> dict[str, object]:
    code, view = engine.submit({"name": name, "script": "job.py", "args": list(args),
                                "log_file": str(tmp_path / f"{name}.log")})
    assert code == 200, view
    return view


def finish(engine: Engine, view: dict[str, object]) -> str:
    job = engine.jobs[str(view["job_id"])]
    assert job.thread is not None
    job.thread.join(30)
    return job.state


def release() -> threading.Event:
    return sys.modules[f"{PACKAGE}.job"].release  # type: ignore[no-any-return]


def test_a_job_resubmitted_while_it_runs_attaches_to_it(engine: Engine, tmp_path: Path) -> None:
    first = submit(engine, tmp_path, "batch-1", "0", "--hold")
    again = submit(engine, tmp_path, "batch-1", "0", "--hold")
    assert (first["attached"], again["attached"]) == (False, True)
    assert again["job_id"] == first["job_id"] and len(engine.jobs) == 1
    release().set()
    assert finish(engine, first) == "COMPLETED"


def test_a_job_resubmitted_after_it_completed_is_taken_as_done(engine: Engine, tmp_path: Path) -> None:
    first = submit(engine, tmp_path, "batch-1", "0")
    assert finish(engine, first) == "COMPLETED"
    again = submit(engine, tmp_path, "batch-1", "0")
    assert again["attached"] and again["job_id"] == first["job_id"] and again["state"] == "COMPLETED"
    assert len(engine.jobs) == 1


def test_a_job_resubmitted_after_it_failed_runs_again(engine: Engine, tmp_path: Path) -> None:
    first = submit(engine, tmp_path, "batch-1", "3")
    assert finish(engine, first) == "FAILED"
    again = submit(engine, tmp_path, "batch-1", "0")
    assert not again["attached"] and again["job_id"] != first["job_id"]
    assert finish(engine, again) == "COMPLETED" and len(engine.jobs) == 2
