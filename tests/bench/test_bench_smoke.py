"""Every benchmark module runs at a tiny size, exits 0 and prints each of its ``BENCH {json}`` figures.

``make bench`` measures at full size; this proves the benchmarks still run (a bench that raises
makes ``benchmarks/run.py`` exit 1 without its figures). The runs start in the background when
the session begins (tests/bench/conftest.py); these tests, last in the session, check them.
``bench_live`` starts a live stack of its own: it belongs to the live tier.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import Future

import pytest

from tests.bench.conftest import BENCHMARKS, SMOKE


def test_every_bench_module_has_a_smoke_run() -> None:
    assert {p.stem for p in BENCHMARKS.glob("bench_*.py")} == set(SMOKE)


@pytest.mark.parametrize(
    "module", [pytest.param(m, marks=pytest.mark.live) if m == "bench_live" else m for m in SMOKE])
def test_bench_runs_and_prints_its_figures(module: str, bench_run: dict[str, Future[tuple[int, str]]]) -> None:
    code, out = bench_run[module].result()
    assert code == 0, out[-6000:]
    figures = [json.loads(line.removeprefix("BENCH ")) for line in out.splitlines() if line.startswith("BENCH ")]
    names = [f["name"] for f in figures]
    assert sorted(names) == sorted(SMOKE[module][1]), out[-3000:]  # every figure, each once
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "note"} and figure["unit"], figure
        assert isinstance(figure["value"], int | float), figure
        # the subprocess timing is NaN by design when the routed engine is not the in-process one
        assert math.isfinite(figure["value"]) or figure["name"] == "routed_small_batch_subprocess_s", figure
