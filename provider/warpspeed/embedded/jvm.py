"""Java servers from jars that ``make setup`` fetched from Maven Central, on loopback.

:func:`java_process` describes one such server as a :class:`~warpspeed.embedded.server.ServerProcess`
(the REST catalog, ElasticMQ and S3Proxy use it). Adding one more JVM server is a module with

- a ``maven/<name>/pom.xml`` (``make setup`` copies its classpath into ``<jars_dir>/<name>``);
- ``<name>_process(jars_dir, folder) -> tuple[ServerProcess, <what clients need>]``: make the
  folder private (:func:`~warpspeed.embedded.state.private_dir`), take its port
  (:func:`~warpspeed.embedded.state.stable_port`) and credential
  (:func:`~warpspeed.embedded.state.secret`), write its config with
  :func:`~warpspeed.embedded.state.write_private`, return :func:`java_process` with its readiness
  path and environment (secrets go in files or the environment, never in ``jvm_args``);
- a context manager over :func:`~warpspeed.embedded.supervisor.supervised`, and one line in
  :func:`warpspeed.embedded.stack.embedded_stack`. Parent death and restarts on the same port
  come with the supervisor.
"""

from __future__ import annotations

import os
import shutil
import signal
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from warpspeed.embedded.class_archive import ClassArchive
from warpspeed.embedded.server import ServerProcess
from warpspeed.exceptions import WarpSpeedConfigError

QUICK_JIT_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:ReservedCodeCacheSize=240m")
"""Compile with C1 only, for JVMs whose work is small: the embedded servers, Maven, the rehearsal's
daemons and its nodes' drivers and executors (unless a profile sets their JVM options). C2's
compiler threads cost them more CPU than its code saves (a local SparkSession making 20 Iceberg
commits used 10.8 CPU seconds with C1 only, 21.5 without). Local Spark keeps C2: scoring 3 million
rows ran at 362k rows/s with it and 220k with C1 only (the test suite sets ``SPARK_SUBMIT_OPTS`` to
this for its own small Spark jobs).

C1 only also shrinks the JVM's default code cache from 240 MB to 48 MB. A warm Spark engine running
the preprocessing DAG test's feature jobs filled that 26 s after it started: the JVM stopped
compiling, the next lambda it linked failed (``InternalError: no such method:
MethodHandle.linkToSpecial``) and that stopped the engine's SparkContext. The cache keeps the tiered
default; it is reserved, not committed, until used."""
QUICK_JIT = " ".join(QUICK_JIT_FLAGS)
""":data:`QUICK_JIT_FLAGS` as one string (``SPARK_SUBMIT_OPTS``, ``MAVEN_OPTS``, Spark's ``extraJavaOptions``)."""
JVM_DEFAULTS = ("-XX:+UseSerialGC", *QUICK_JIT_FLAGS, "-Djava.net.preferIPv4Stack=true")
"""Small heaps on a shared machine; IPv4 so that ``127.0.0.1`` binds show as such (not ``::ffff:``)."""


def classpath(jars_dir: Path, folder: str, *extra: Path) -> str:
    """Return the classpath of the jars in ``jars_dir/folder`` (plus ``extra``), or say how to fetch them."""
    jars = sorted((jars_dir / folder).glob("*.jar"))
    if not jars:
        raise WarpSpeedConfigError(
            f"no jars in {jars_dir / folder}: run `warpspeed setup` (fetches them with Maven) "
            "or point [warpspeed] jars_dir at the folder that holds them"
        )
    return os.pathsep.join([*(str(j) for j in jars), *(str(e) for e in extra)])


def java_bin() -> str:
    """Return the ``java`` executable (``$JAVA_HOME/bin/java`` or the one on ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found:
        raise WarpSpeedConfigError("no java found: install a JDK 17 (apt-get install openjdk-17-jdk-headless)")
    return found


def http_answers(url: str) -> bool:
    """Tell whether ``url`` gets an HTTP answer (any status: 401 and 400 count)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def java_process(
    name: str, main_class: str, cp: str, *, port: int, log_path: Path, ready_path: str, home: Path, jars_dir: Path,
    heap: str = "256m", jvm_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> ServerProcess:
    """Describe a JVM server: ``java -Xmx<heap> ... -cp <cp> <main_class>`` on ``127.0.0.1:port``.

    :param ready_path: path (and query) whose HTTP answer means the server is up.
    :param home: the state folder it belongs to (``-Dwarpspeed.home``: how its process is found).
    :param jars_dir: the folder ``cp`` comes from; its class archives go in its ``cds/``
        (:class:`~warpspeed.embedded.class_archive.ClassArchive`).
    :param args: the program's own arguments, after ``main_class`` (no secrets: they are visible).
    """
    java = java_bin()
    archive = ClassArchive(name, java, [Path(p) for p in cp.split(os.pathsep)], jars_dir)
    argv = [f"-Xmx{heap}", *JVM_DEFAULTS, f"-Dwarpspeed.home={home}", *jvm_args, "-cp", cp, main_class, *args]
    return ServerProcess(
        name=name, command=lambda: [java, *archive.jvm_args(), *argv], port=port, log_path=log_path,
        ready=lambda: http_answers(f"http://127.0.0.1:{port}{ready_path}"), env=dict(env or {}),
        death_signal=signal.SIGTERM, stop_signal=signal.SIGTERM, identity=str(home), after_exit=archive.finish,
    )
