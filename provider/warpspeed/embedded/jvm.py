"""Run a Java server from jars that ``make setup`` fetched from Maven Central, on loopback."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from warpspeed.exceptions import WarpSpeedConfigError, WarpSpeedError

log = logging.getLogger(__name__)


def classpath(jars_dir: Path, folder: str) -> str:
    """Return the classpath of the jars in ``jars_dir/folder``, or say how to fetch them."""
    jars = sorted((jars_dir / folder).glob("*.jar"))
    if not jars:
        raise WarpSpeedConfigError(
            f"no jars in {jars_dir / folder}: run `make setup` (fetches them with Maven) "
            "or point [warpspeed] jars_dir at the folder that holds them"
        )
    return os.pathsep.join(str(j) for j in jars)


def java_bin() -> str:
    """Return the ``java`` executable (``$JAVA_HOME/bin/java`` or the one on ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found:
        raise WarpSpeedConfigError("no java found: install a JDK 17 (apt-get install openjdk-17-jre-headless)")
    return found


def _http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


@contextmanager
def java_server(
    args: list[str], *, ready_url: str, log_path: Path, env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``java args...``; wait until ``ready_url`` answers; stop it (and its group) on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [java_bin(), *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ | dict(env or {})), start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _http_ready(ready_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise WarpSpeedError(f"{args[-1]} did not start (log {log_path}):\n{tail}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
