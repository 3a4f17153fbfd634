"""CPU seconds an embedded JVM server takes to answer, with its class archive and without.

For ElasticMQ (SQS), S3Proxy and the Iceberg REST catalog: one run writes the archive (not
measured), then starts alternate between the same command with the archive mapped and without
it (the plain JVM start every run paid before). A start's CPU is the JVM's user + system time
when it first answers, read from ``/proc``; its wall time is from spawn to that answer.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.class_archive import ARCHIVE_DIR
from warpspeed.embedded.postgres import embedded_postgres
from warpspeed.embedded.rest_catalog import LAUNCHER_DIR, REST_CATALOG_JARS
from warpspeed.embedded.s3_server import S3PROXY_JARS
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.server_archives import server_processes
from warpspeed.embedded.sqs_server import ELASTICMQ_JARS

RUNS = int(os.environ.get("WARPSPEED_BENCH_SERVER_RUNS", "3"))
"""Starts of each kind per server (the size knob: the suite's smoke run uses one)."""
HZ = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def _start(process: ServerProcess) -> tuple[float, float]:
    """Start ``process`` until it answers, stop it; return (CPU seconds, wall seconds) to its answer."""
    started = time.monotonic()
    process.spawn()
    try:
        process.wait_ready()
        wall = time.monotonic() - started
        assert process.pid is not None
        return _cpu_s(process.pid), wall
    finally:
        process.stop()


def _without_archive(process: ServerProcess) -> ServerProcess:
    command = process.command
    return dataclasses.replace(process, after_exit=None, command=lambda: [
        a for a in command() if not a.startswith(("-XX:SharedArchiveFile=", "-XX:ArchiveClassesAtExit="))])


def _own_jars(real: Path, work: Path) -> Path:
    """Return a jars folder of links to the real server jars, with no class archive yet."""
    own = work / "jars"
    own.mkdir()
    for folder in (ELASTICMQ_JARS, S3PROXY_JARS, REST_CATALOG_JARS, LAUNCHER_DIR):
        (own / folder).symlink_to(real / folder, target_is_directory=True)
    return own


def run() -> Iterator[dict]:
    """Start each server with and without its archive, alternating; report median CPU and wall."""
    real = WarpSpeedSettings.from_mapping({}).jars_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="warpspeed-bench-jvm-") as tmp:
        work = Path(tmp)
        jars = _own_jars(real, work)
        with embedded_postgres(work / "pg") as pg:
            servers = server_processes(jars, work, pg)
            totals = {"plain": [0.0, 0.0], "archived": [0.0, 0.0]}
            for name, describe in servers.items():
                process = describe()
                _start(process)  # writes the archive at its stop
                assert any((jars / ARCHIVE_DIR).glob(f"{process.name}-*.jsa")), f"{process.name} wrote no class archive"
                samples: dict[str, list[tuple[float, float]]] = {"plain": [], "archived": []}
                for _ in range(RUNS):
                    samples["plain"].append(_start(_without_archive(process)))
                    samples["archived"].append(_start(process))
                for kind, runs in samples.items():
                    cpu = statistics.median(c for c, _ in runs)
                    wall = statistics.median(w for _, w in runs)
                    totals[kind][0] += cpu
                    totals[kind][1] += wall
                    yield {"name": f"server_start_cpu_s_{name}{'' if kind == 'plain' else '_archived'}",
                           "value": round(cpu, 2), "unit": "s",
                           "note": f"median of {RUNS} starts, {'without' if kind == 'plain' else 'with'} the class "
                                   f"archive; JVM user+system CPU until it answered (wall {wall:.2f} s)"}
    yield {"name": "server_start_cpu_ratio", "value": round(totals["plain"][0] / totals["archived"][0], 2),
           "unit": "x", "note": "CPU to first answer of the 3 servers, without / with class archives, started "
                                "alternately in this run"}
    yield {"name": "server_start_wall_ratio", "value": round(totals["plain"][1] / totals["archived"][1], 2),
           "unit": "x", "note": "wall time to first answer of the 3 servers, without / with class archives"}
