"""``warpspeed setup``: fetch the jars of local Spark and of the embedded servers from Maven Central.

Two kinds of download, both with Maven (``mvn``, which needs Java 17):

- single artifacts for local Spark (:data:`MAVEN_ARTIFACTS`: the Iceberg Spark runtime, the
  SQLite JDBC driver, the S3 clients, the OpenLineage listener), copied into the jars folder itself
  by one ``mvn`` call on a pom written for them (:meth:`FetchPlan.artifacts_pom`);
- the classpath of each embedded JVM server, resolved from the small poms shipped in the wheel
  (``warpspeed/embedded/maven/<server>/pom.xml``), copied into ``<jars>/<server>/``.

A stamp file (``<jars>/.fetched``) records what was fetched; a second run with the same
artifacts and poms does nothing. A server's classpath is fetched beside its folder and then
swapped in, so a server starting meanwhile finds the old classpath or the new one, never half.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from warpspeed.embedded.jvm import QUICK_JIT
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.lineage.spark import PACKAGE as OPENLINEAGE_SPARK

ICEBERG_VERSION = "1.10.1"
SQLITE_JDBC_VERSION = "3.46.1.3"
MAVEN_ARTIFACTS = (
    f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{ICEBERG_VERSION}",
    f"org.xerial:sqlite-jdbc:{SQLITE_JDBC_VERSION}",
    f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}",
    "org.apache.hadoop:hadoop-aws:3.3.4",
    "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    OPENLINEAGE_SPARK,
)
"""Jars that local Spark loads from the jars folder itself (``spark.jars``): the Iceberg runtime,
SQLite JDBC, Iceberg's S3FileIO SDK (``iceberg-aws-bundle``) for tables on S3, Hadoop's S3A
(``hadoop-aws`` and the SDK v1 bundle it is built against; 3.3.4 is pyspark 3.5's Hadoop) for the
``s3://`` documents and raw data the jobs read, as EMRFS serves them on EMR, and the OpenLineage
Spark listener (used only when lineage is on)."""
QUICK_MAVEN_OPTS = QUICK_JIT
"""The JVM of each ``mvn`` call compiles with C1 only (:data:`~warpspeed.embedded.jvm.QUICK_JIT`):
Maven's start takes about half as long (1.8 s instead of 3.3 s a call on a busy 2-core machine), and
``setup`` makes four. A ``MAVEN_OPTS`` of the user's own replaces it."""
STAMP = ".fetched"
ARTIFACTS_POM = ".local-spark-jars.pom.xml"
"""The pom :meth:`FetchPlan.artifacts_pom` writes into the jars folder while ``setup`` runs."""
MAVEN_POMS = Path(__file__).resolve().parent / "maven"
"""The servers' poms, shipped in the wheel (package data)."""


@dataclass(frozen=True)
class FetchPlan:
    """What ``warpspeed setup`` fetches into one jars folder."""

    jars_dir: Path
    artifacts: tuple[str, ...]
    poms: tuple[Path, ...]
    """One pom per embedded server; its folder name names the server's jars folder."""

    def fingerprint(self) -> str:
        """Return a digest of the artifacts and the poms' contents (the stamp's text)."""
        digest = hashlib.sha256("\n".join(self.artifacts).encode())
        for pom in self.poms:
            digest.update(pom.parent.name.encode() + pom.read_bytes())
        return digest.hexdigest()[:16]

    def up_to_date(self) -> bool:
        """Tell whether the stamp says these very artifacts and poms were fetched."""
        stamp = self.jars_dir / STAMP
        return stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == self.fingerprint()

    def artifacts_pom(self) -> str:
        """Return a pom whose dependencies are :attr:`artifacts`, each without its own dependencies.

        One ``mvn`` call copies them all: six ``dependency:copy`` calls took 11.2 s, this 3.4 s. The
        exclusions keep it to the artifacts themselves, as ``dependency:copy`` fetches them.
        """
        deps = []
        for coordinate in self.artifacts:
            group, artifact, version = coordinate.split(":")
            deps.append(f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
                        f"<version>{version}</version>\n      <exclusions><exclusion><groupId>*</groupId>"
                        "<artifactId>*</artifactId></exclusion></exclusions></dependency>")
        return "\n".join([
            '<project xmlns="http://maven.apache.org/POM/4.0.0">',
            "  <modelVersion>4.0.0</modelVersion>",
            "  <groupId>io.warpspeed.setup</groupId><artifactId>local-spark-jars</artifactId><version>1</version>",
            "  <packaging>pom</packaging>",
            "  <dependencies>", *deps, "  </dependencies>",
            "</project>", ""])

    def commands(self, mvn: str = "mvn") -> list[list[str]]:
        """Return the ``mvn`` command lines, in order (each server's classpath into :meth:`staging` first)."""
        quiet = [mvn, "--batch-mode", "--quiet"]
        lines = [[*quiet, "-f", str(self.jars_dir / ARTIFACTS_POM), "dependency:copy-dependencies",
                  f"-DoutputDirectory={self.jars_dir}"]]
        lines += [[*quiet, "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime",
                   f"-DoutputDirectory={self.staging(pom)}"] for pom in self.poms]
        return lines

    def staging(self, pom: Path) -> Path:
        """Return the folder a server's classpath is fetched into before it replaces ``<jars>/<server>``."""
        return self.jars_dir / f".{pom.parent.name}.new"

    def swap_in(self, pom: Path) -> None:
        """Replace ``<jars>/<server>`` with the freshly fetched classpath (no jar of an old version stays)."""
        target, old = self.jars_dir / pom.parent.name, self.jars_dir / f".{pom.parent.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        self.staging(pom).rename(target)
        shutil.rmtree(old, ignore_errors=True)


def server_poms(root: Path) -> tuple[Path, ...]:
    """Return the servers' poms under ``root`` (``<root>/<server>/pom.xml``), by server name."""
    return tuple(sorted(root.glob("*/pom.xml")))


def find_mvn() -> str:
    """Return the ``mvn`` executable, or say what to install."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise WarpSpeedConfigError(
            "warpspeed setup needs Maven 3 (`mvn`) and Java 17 (`java`) on PATH: install them (e.g. "
            "`apt-get install maven openjdk-17-jdk-headless`, or `sdk install maven` with SDKMAN) and run it again"
        )
    return mvn


def fetch(jars_dir: Path, *, force: bool = False, run: Callable[[Sequence[str]], None] | None = None,
          mvn: str | None = None) -> list[str]:
    """Fetch every jar into ``jars_dir`` unless it is up to date; return the ``mvn`` calls made (joined).

    :param force: fetch again even when the stamp matches.
    :param run: how to run one command (tests); default: :func:`subprocess.run`, failing on error.
    """
    plan = FetchPlan(jars_dir.resolve(), MAVEN_ARTIFACTS, server_poms(MAVEN_POMS))
    if not plan.poms:
        raise WarpSpeedConfigError(f"no server poms under {MAVEN_POMS}: reinstall warpspeed-airflow-provider")
    stamp = plan.jars_dir / STAMP
    if plan.up_to_date() and not force:
        stamp.touch()  # newer than what it depends on, for make
        return []
    runner = run or _run
    commands = plan.commands(mvn or find_mvn())
    plan.jars_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for pom in plan.poms:
        shutil.rmtree(plan.staging(pom), ignore_errors=True)
    artifacts_pom = plan.jars_dir / ARTIFACTS_POM
    artifacts_pom.write_text(plan.artifacts_pom(), encoding="utf-8")
    try:
        for command in commands:
            runner(command)
    finally:
        artifacts_pom.unlink(missing_ok=True)
    for pom in plan.poms:
        plan.swap_in(pom)
    stamp.write_text(plan.fingerprint() + "\n", encoding="utf-8")
    return [" ".join(c) for c in commands]


def maven_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment of a ``mvn`` call: ``MAVEN_OPTS`` as given, else :data:`QUICK_MAVEN_OPTS`."""
    return {**environ, "MAVEN_OPTS": environ.get("MAVEN_OPTS") or QUICK_MAVEN_OPTS}


def _run(command: Sequence[str]) -> None:
    proc = subprocess.run(list(command), capture_output=True, text=True, check=False, env=maven_env(os.environ))
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise WarpSpeedConfigError(f"{' '.join(command)} failed (exit {proc.returncode}):\n{tail}")
