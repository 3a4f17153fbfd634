"""Headless Chromium for the UI checks: one set of flags, and a stop on the wall clock.

``--virtual-time-budget`` lets a page's scripts run for that much virtual time, but virtual time
stands still while a request is pending: a page that polls an API server slowed by a loaded
machine never used its budget, and Chromium never took the screenshot (a CI run hung 180 s on the
live UI). ``--timeout`` stops loading after that many real milliseconds, and the screenshot or the
DOM is taken then. Even so, under the full suite's load Chromium sometimes never exits: CI run 7
timed out at 180 s and CI run 8 at 900 s on the live UI, while other runs took their screenshot.
So each attempt gets :data:`ATTEMPT_TIMEOUT_S` and a hung one is killed and run again, up to
:data:`ATTEMPTS` times; the test's output says how long each took.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
STOP_AFTER_MS = 60_000
ATTEMPT_TIMEOUT_S = 240
ATTEMPTS = 3


def chromium_or_skip() -> str:
    """Return the Chromium binary on PATH, or skip the test saying how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("no Chromium binary on PATH: `apt-get install -y chromium` (Debian) or `make chromium`")
    return found


def headless(profile: Path, url: str, *args: str, budget_ms: int) -> str:
    """Run headless Chromium on ``url`` with ``args`` (``--screenshot=...``, ``--dump-dom``); return its stdout.

    Each attempt runs in a session of its own with its own profile folder (``<profile>-<attempt>``): a
    hung one is killed with all its processes, and no lock of its profile is left to the next.

    :param budget_ms: virtual time the page's scripts get; loading stops after :data:`STOP_AFTER_MS`
        real milliseconds whatever is still pending.
    """
    chromium = chromium_or_skip()
    for attempt in range(1, ATTEMPTS + 1):
        command = [chromium, *FLAGS, f"--user-data-dir={profile}-{attempt}", f"--virtual-time-budget={budget_ms}",
                   f"--timeout={STOP_AFTER_MS}", *args, url]
        began = time.monotonic()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=ATTEMPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            print(f"headless Chromium on {url}: attempt {attempt} hung for {ATTEMPT_TIMEOUT_S} s; killed")
            if attempt == ATTEMPTS:
                raise
            continue
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, command, out, err)
        print(f"headless Chromium on {url}: {time.monotonic() - began:.1f} s (attempt {attempt})")
        return out
    raise AssertionError("unreachable")
