"""Write the embedded JVM servers' class archives before anything starts them for real (``make setup``).

A server that finds no archive of its classpath writes one when it stops
(:class:`~warpspeed.embedded.class_archive.ClassArchive`). A session-long server stops only at the
session's end, so every start before that (``make test``'s six lanes start theirs at once) ran
without an archive and wrote one more at its stop: in one fresh-clone run, 18 starts of
ElasticMQ, S3Proxy and the REST catalog wrote an archive of ``.jars``, against 45 that mapped one.
Starting each server once until it answers, then stopping it, writes all three up front.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from warpspeed.embedded.class_archive import ARCHIVE_DIR
from warpspeed.embedded.postgres import PostgresServer, embedded_postgres
from warpspeed.embedded.rest_catalog import rest_catalog_process
from warpspeed.embedded.s3_server import s3_process
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.sqs_server import sqs_process


def server_processes(jars_dir: Path, work: Path, pg: PostgresServer) -> dict[str, Callable[[], ServerProcess]]:
    """Return how to describe each embedded JVM server on ``jars_dir``, its state under ``work``; start nothing.

    Keys: ``sqs`` (ElasticMQ, messages in memory), ``s3`` (S3Proxy), ``rest_catalog`` (on ``pg``).
    """
    return {
        "sqs": lambda: sqs_process(jars_dir, work / "sqs", persist=False),
        "s3": lambda: s3_process(work / "s3", jars_dir)[0],
        "rest_catalog": lambda: rest_catalog_process(pg, work / "home", jars_dir)[0],
    }


def write_server_archives(jars_dir: Path) -> list[Path]:
    """Start ElasticMQ, S3Proxy and the REST catalog once each (each writes its archive at the stop); return them.

    A server whose archive exists maps it and writes nothing.
    """
    with tempfile.TemporaryDirectory(prefix="warpspeed-server-archives-") as tmp:
        work = Path(tmp)
        with embedded_postgres(work / "pg") as pg:
            for describe in server_processes(jars_dir, work, pg).values():
                process = describe()
                process.spawn()
                try:
                    process.wait_ready()
                finally:
                    process.stop()  # SIGTERM: the JVM writes the archive as it exits
    return sorted((jars_dir / ARCHIVE_DIR).glob("*.jsa"))


def main(argv: list[str] | None = None) -> int:
    """Write the server archives of the jars folder ``--jars-dir``; print every archive it holds."""
    parser = argparse.ArgumentParser(prog="python -m warpspeed.embedded.server_archives")
    parser.add_argument("--jars-dir", type=Path, required=True)
    for path in write_server_archives(parser.parse_args(argv).jars_dir.resolve()):
        print(f"class archive: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
