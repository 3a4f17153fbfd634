"""A JVM server writes its class archive at its first clean stop, and maps it at every later start;
the session's servers and local Spark drivers map the archives ``make setup`` wrote.

ElasticMQ (the smallest of the embedded JVM servers) on a jars folder of the test's own, whose
``elasticmq/`` links to the real one: the archive lands in that folder's ``cds/``. "Maps it" is
read from ``/proc/<pid>/maps``, which lists the archive's file when the JVM uses it.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psutil
import pytest

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import spark_archive
from warpspeed.embedded.class_archive import ARCHIVE_DIR
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.sqs_server import ELASTICMQ_JARS, sqs_process

if TYPE_CHECKING:
    from tests.conftest import SessionS3


@pytest.fixture
def own_jars(jars_dir: Path, tmp_path: Path) -> Path:
    """Return a jars folder whose only server is ElasticMQ (the real jars), with no archive yet."""
    folder = tmp_path / "jars"
    folder.mkdir()
    (folder / ELASTICMQ_JARS).symlink_to(jars_dir / ELASTICMQ_JARS, target_is_directory=True)
    return folder


def _run(process: ServerProcess, *, kill: bool = False) -> tuple[list[str], str]:
    """Start ``process`` until it answers, then stop it (or SIGKILL it); return its command line and memory map."""
    process.spawn()
    try:
        process.wait_ready()
        assert process.pid is not None
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")
        maps = Path(f"/proc/{process.pid}/maps").read_text()
    finally:
        if kill:
            process.kill()
            assert process.proc is not None
            process.proc.wait(timeout=30)
        else:
            process.stop()
    return argv, maps


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_the_first_stop_writes_the_archive_and_later_starts_map_it(own_jars: Path, tmp_path: Path) -> None:
    process = sqs_process(own_jars, tmp_path / "sqs", persist=False)
    cds = own_jars / ARCHIVE_DIR

    argv, maps = _run(process)
    writing = [a for a in argv if a.startswith("-XX:ArchiveClassesAtExit=")]
    assert len(writing) == 1 and str(cds) not in maps  # (the JDK's own classes.jsa is mapped in every run)
    archives = _files(cds)
    assert len(archives) == 1 and archives[0].startswith("sqs-") and archives[0].endswith(".jsa"), archives

    argv, maps = _run(process)
    assert f"-XX:SharedArchiveFile={cds / archives[0]}" in argv
    assert not any(a.startswith("-XX:ArchiveClassesAtExit=") for a in argv)
    assert str(cds / archives[0]) in maps  # the JVM mapped it: its classes came from the archive
    assert _files(cds) == archives


def test_a_run_killed_before_its_stop_leaves_no_archive_and_the_next_run_writes_one(
    own_jars: Path, tmp_path: Path
) -> None:
    process = sqs_process(own_jars, tmp_path / "sqs", persist=False)
    cds = own_jars / ARCHIVE_DIR

    _run(process, kill=True)
    assert process.proc is not None and process.proc.returncode == -signal.SIGKILL
    argv, _ = _run(process)  # the start sees the killed run: its partial file goes
    assert any(a.startswith("-XX:ArchiveClassesAtExit=") for a in argv)
    archives = _files(cds)
    assert len(archives) == 1 and archives[0].endswith(".jsa"), archives


def test_local_spark_drivers_map_the_spark_archive_that_setup_wrote(spark: Any, jars_dir: Path) -> None:
    """The session's driver (started with the suite's ``SPARK_SUBMIT_OPTS``) maps ``make setup``'s Spark archive."""
    archive = spark_archive.archive_path(jars_dir)
    assert archive.is_file(), f"`make setup` wrote no {archive}"
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert f"-XX:SharedArchiveFile={archive}" in argv
    assert str(archive) in Path(f"/proc/{pid}/maps").read_text()


def _listener(url: str) -> int:
    port = urlsplit(url).port
    return next(c.pid for c in psutil.net_connections(kind="inet")
                if c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid)


def test_the_sessions_servers_map_the_archives_that_setup_wrote(
    sqs_endpoint: str, s3: SessionS3, spark_home: Path, jars_dir: Path
) -> None:
    """``make setup`` (``warpspeed.embedded.server_archives``) wrote each server's archive: none of them writes one."""
    catalog = WarpSpeedSettings.from_mapping({"home": str(spark_home)}).catalog.rest_uri()
    cds = jars_dir / ARCHIVE_DIR
    for name, url in (("sqs", sqs_endpoint), ("s3", s3.server.endpoint_url), ("rest-catalog", catalog)):
        pid = _listener(url)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        (mapped,) = [a.removeprefix("-XX:SharedArchiveFile=") for a in argv if a.startswith("-XX:SharedArchiveFile=")]
        assert Path(mapped).parent == cds and Path(mapped).name.startswith(f"{name}-"), argv
        assert mapped in Path(f"/proc/{pid}/maps").read_text(), f"{name} did not map {mapped}"
