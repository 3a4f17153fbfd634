"""Class-data sharing for the embedded JVM servers: their classes mapped from an archive, not loaded one by one.

A JVM server spends most of its start loading and verifying classes from its jars. JDK 17 can
write the classes a run loaded into a dynamic archive when that run exits
(``-XX:ArchiveClassesAtExit``) and map the archive in later runs (``-XX:SharedArchiveFile``).
Measured for ElasticMQ on this project's 2-core machine: 3.2 CPU seconds until it answered
without an archive, 1.6 with one.

One archive per server classpath and JDK, under ``<jars_dir>/cds/``: the first run of a server
writes it when it is stopped (SIGTERM: a few seconds more at that stop, once); a run killed
before that leaves a partial file that is never used. An archive that no longer fits (another
JDK, other jars) is ignored by the JVM (``-Xshare:auto``, the default), and its name changes with
them anyway. A classpath with a folder on it gets no archive: JDK 17 refuses to write one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

ARCHIVE_DIR = "cds"
"""The folder of ``jars_dir`` that holds the archives."""
STALE_AFTER_S = 3600.0
"""A partial archive (its run was killed) older than this is deleted by the next run that looks."""
CLEAN_EXITS = (0, 128 + signal.SIGTERM)
"""Exit codes of a JVM that wrote its archive: a normal exit, or SIGTERM (which runs the JVM's exit)."""


def _fingerprint(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        st = path.stat()
        digest.update(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class ClassArchive:
    """The class archive of one JVM classpath (a server's, local Spark's): the options that use it, or write it at exit.

    :param name: the server's name (part of the file name).
    :param java: the ``java`` executable.
    :param classpath: the server's classpath entries.
    :param jars_dir: where the ``cds/`` folder goes.
    """

    def __init__(self, name: str, java: str, classpath: Sequence[Path], jars_dir: Path) -> None:
        self.usable = all(p.is_file() for p in classpath)
        key = _fingerprint([Path(java), *classpath]) if self.usable else "none"
        self.path = jars_dir / ARCHIVE_DIR / f"{name}-{key}.jsa"
        self._pending: Path | None = None

    def jvm_args(self) -> list[str]:
        """Return the options for the next start: map the archive, or write it when this run exits."""
        if not self.usable:
            return []
        if self.path.is_file():
            return [f"-XX:SharedArchiveFile={self.path}"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self._pending = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        return [f"-XX:ArchiveClassesAtExit={self._pending}"]

    def finish(self, returncode: int | None) -> None:
        """Keep the archive the run that just ended wrote, if it ended cleanly (else delete the partial file)."""
        pending, self._pending = self._pending, None
        if pending is None or not pending.exists():
            return
        if returncode in CLEAN_EXITS and pending.stat().st_size > 0:
            os.replace(pending, self.path)  # atomic: a reader sees no archive or a whole one
            log.info("class archive written: %s", self.path)
        else:
            pending.unlink(missing_ok=True)

    def _remove_stale(self) -> None:
        for partial in self.path.parent.glob(f"{self.path.name}.*.tmp"):
            try:
                if time.time() - partial.stat().st_mtime > STALE_AFTER_S:
                    partial.unlink()
            except FileNotFoundError:
                pass
