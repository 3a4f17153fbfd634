"""``airflow dags test warpspeed_scoring`` on the embedded stack, twice: exact and idempotent."""

from __future__ import annotations

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


def test_two_windows_score_every_pair_exactly_once(stack: EmbeddedStack) -> None:
    first = run_demo(tenants=6, requests=16, invalid=3, stack=stack)
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


def test_every_table_and_document_of_a_window_is_on_the_s3_server(stack: EmbeddedStack) -> None:
    summary = run_demo(tenants=3, requests=6, invalid=1, stack=stack)
    assert summary["pairs_exact"] == summary["pairs"] > 0
    home = stack.home.resolve()
    assert stack.s3 is not None
    bucket = home / "s3" / "buckets" / stack.s3.endpoint.bucket
    # the warehouse and the documents are S3Proxy's files; nothing Iceberg outside <home>/s3
    assert list((bucket / "warehouse").rglob("*.metadata.json"))
    assert list((bucket / "storage" / "windows" / summary["window_id"]).glob("*.json"))
    assert [p for p in home.rglob("*.metadata.json") if bucket not in p.parents] == []
    # and the window's S3 requests were counted by component and recorded
    from warpspeed.ledger.tables import S3_REQUESTS_TABLE

    rows = WarpSpeedSettings.from_mapping({}).catalog.load().load_table(S3_REQUESTS_TABLE).scan().to_arrow().to_pylist()
    components = {r["component"] for r in rows if r["window_id"] == summary["window_id"]}
    assert {"intake", "plan", "score", "publish"} <= components


def test_a_window_on_file_storage_scores_every_pair_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``storage_prefix = file://…`` stays a supported setting: no S3 server, documents and warehouse in folders."""
    home = tmp_path / "file-home"
    monkeypatch.setenv("WARPSPEED_HOME", str(home))
    settings = WarpSpeedSettings.from_mapping({"home": str(home), "storage_prefix": (home / "storage").as_uri()})
    with embedded_stack(settings.home, settings.jars_dir, s3=False) as running:
        assert running.s3 is None
        summary = run_demo(tenants=3, requests=6, invalid=1, stack=running, settings=settings)
    assert summary["pairs_exact"] == summary["pairs"] > 0
    assert summary["ledger_rows"] == summary["batches"] > 0
    assert list((home / "storage" / "windows" / summary["window_id"]).glob("*.json"))
    assert list((home / "warehouse").rglob("*.metadata.json"))
    assert not (home / "s3").exists()
