"""``airflow dags test warpspeed_scoring`` on the embedded stack, twice: exact and idempotent, no ERROR line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.demo import run_demo
from warpspeed.embedded.stack import EmbeddedStack, embedded_stack
from warpspeed.ledger.tables import SCORES_TABLE


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedStack]:
    """Run the demo's embedded servers for the whole test, so the scores can be read after both runs."""
    monkeypatch.setenv("WARPSPEED_HOME", str(tmp_path / "home"))
    settings = WarpSpeedSettings.from_mapping({})
    with embedded_stack(settings.home, settings.jars_dir) as running:
        yield running


ERROR_LINE = re.compile(r"\[error\s*\]|\bERROR\b|level=error")


def error_lines(window_id: str) -> list[str]:
    """Return the ERROR lines of the demo's ``airflow dags test`` log of a window (task logs included)."""
    log = WarpSpeedSettings.from_mapping({}).home / "logs" / f"dags_test_{window_id}.log"
    return [line for line in log.read_text(encoding="utf-8").splitlines() if ERROR_LINE.search(line)]


def test_two_windows_score_every_pair_exactly_once(stack: EmbeddedStack) -> None:
    first = run_demo(tenants=6, requests=16, invalid=3, stack=stack)
    # issue 25: a local window alarms nobody (the EMR links and the mapped XCom read logged errors)
    assert error_lines(first["window_id"]) == []
    assert first["requests_in_manifest"] == 16
    assert first["dead_lettered"] == 3
    assert first["pairs_exact"] == first["pairs"] > 0
    assert first["ledger_rows"] == first["batches"] > 0
    assert first["rows_scored"] > 0

    # A second run of the same window (new requests for the same pairs, as `make demo` twice
    # does) rescores those pairs without duplicating a single account.
    second = run_demo(tenants=6, requests=16, invalid=0, stack=stack)
    assert second["window_id"] == first["window_id"]
    assert second["pairs_exact"] == second["pairs"]
    scores = WarpSpeedSettings.from_mapping({}).catalog.load().load_table(SCORES_TABLE).scan(
        selected_fields=("tenant_id", "model", "account_id")
    ).to_arrow().to_pylist()
    keys = [(r["tenant_id"], r["model"], r["account_id"]) for r in scores]
    assert len(keys) == len(set(keys)) > 0
