"""The suite's GC thresholds reach its own process and every interpreter of the checkout's virtualenv."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from tests import GC_THRESHOLD_VAR

pytestmark = pytest.mark.unit


def _expected() -> tuple[int, ...]:
    return tuple(int(x) for x in os.environ[GC_THRESHOLD_VAR].split(","))


def test_this_process_collects_with_the_suites_thresholds() -> None:
    assert gc.get_threshold() == _expected() != (700, 10, 10)


def test_a_child_interpreter_applies_the_variable_at_start() -> None:
    probe = "import gc; print(','.join(map(str, gc.get_threshold())))"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert tuple(int(x) for x in child.stdout.split(",")) == _expected(), (
        "no tests/gc_threshold.pth in the virtualenv: run make setup")
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != GC_THRESHOLD_VAR})
    assert plain.stdout.strip() == "700,10,10"  # without the variable: CPython's defaults
