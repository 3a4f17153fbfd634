"""The Warp Speed dashboard: pure aggregation, and the page served by a real ``airflow api-server``.

The end-to-end test seeds a ledger in a temporary Warp Speed home, starts ``airflow api-server``
on 127.0.0.1 with this repo's ``plugins/`` folder, reads the page and its JSON, checks the
navigation entry through ``/api/v2/plugins``, then loads the page in headless Chromium
(``--dump-dom`` for its text, ``--screenshot`` saved under the test's tmp dir and checked).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.chromium import headless
from tests.paths import REPO_ROOT
from warpspeed.config.catalog import CatalogConfig
from warpspeed.dashboard import figures
from warpspeed.dashboard.page import render_html
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import airflow_env
from warpspeed.hooks.iceberg import IcebergLedgerHook
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.records import batch_record
from warpspeed.ledger.tables import ensure_tables
from warpspeed.window.manifests import BatchManifest, BatchRun

PLUGINS = REPO_ROOT / "plugins"
NOW = datetime.now(UTC).replace(microsecond=0)




def _records(windows: int = 3) -> list:
    """Return ledger records: per window two batches, tenants t-00..t-05, one cluster created."""
    out = []
    for w in range(windows):
        start = NOW - timedelta(minutes=30 * (windows - w))
        window_id = start.strftime("%Y%m%dT%H%MZ")
        for b in range(2):
            tenants = [f"t-{i:02d}" for i in range(b * 3, b * 3 + 3)]
            members = tuple(
                ScoringRequest(request_id=f"{window_id}-{b}-{i}", tenant_id=t, model="churn_risk",
                               model_version="v1", workload="scoring", requested_at=start.isoformat(),
                               estimated_accounts=100)
                for i, t in enumerate(tenants))
            batch_id = f"{window_id}-scoring-{b}"
            seconds = 40.0 + 20 * b + w
            manifest = BatchManifest(batch_id=batch_id, window_id=window_id, workload="scoring",
                                     members=members, estimated_rows=300, models_uri="file:///m", summary_uri="file:///s")
            run = BatchRun(batch_id=batch_id, window_id=window_id, workload="scoring",
                           batch_manifest_uri="file:///b", summary_uri="file:///s", backend="local",
                           cluster_id="local:scoring",
                           cluster_created=(w == 0 and b == 0), state="SUCCEEDED",
                           started_at=(start + timedelta(seconds=5)).isoformat(),
                           finished_at=(start + timedelta(seconds=5 + seconds)).isoformat(),
                           run_seconds=seconds)
            summary = {"status": "succeeded", "duration_s": seconds - 3,
                       "members": [{"tenant_id": t, "rows": 1000 * (int(t[2:]) + 1), "status": "scored"}
                                   for t in tenants]}
            summary["rows"] = sum(m["rows"] for m in summary["members"])
            out.append(batch_record(run, manifest, summary, start))
    return out


def test_summarize_aggregates_windows_tenants_and_reuse() -> None:
    records = _records()
    from dataclasses import asdict
    rows = [asdict(r) for r in records]
    board = figures.summarize(rows, queue=figures.QueueStatus(depth=4), maintenance_rows=None,
                                since=NOW - timedelta(days=1), now=NOW)
    assert len(board.windows) == 3 and all(w.batches == 2 and w.requests == 6 for w in board.windows)
    assert board.windows[0].window_start > board.windows[-1].window_start  # newest first
    assert board.batches == 6 and board.batches_on_created_clusters == 1
    assert board.batches_on_reused_clusters == 5
    assert board.clusters_created == 1 and board.clusters_used == 1
    assert board.cost_usd == pytest.approx(sum(r.cost_total_usd for r in records))
    assert sum(t.cost_usd for t in board.top_tenants) == pytest.approx(board.cost_usd, abs=1e-5)
    assert board.top_tenants[0].tenant_id == "t-05"  # most rows in the longest batch
    assert 0 < board.spot_share < 1
    assert "does not exist" in (board.maintenance_note or "")
    page = render_html(board)
    assert "Top tenants by cost" in page and "t-05" in page and "<svg" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch


def test_latest_maintenance_per_table_with_any_schema() -> None:
    rows = [{"table_name": "scores.account_scores", "action": "expire_snapshots", "status": "ok",
             "finished_at": NOW - timedelta(days=1)},
            {"table_name": "scores.account_scores", "action": "rewrite_data_files", "status": "ok",
             "finished_at": NOW},
            {"table_name": "features.account_features", "action": "expire_snapshots", "status": "failed",
             "finished_at": NOW}]
    board = figures.summarize([], queue=figures.QueueStatus(error="x"), maintenance_rows=rows,
                                since=NOW, now=NOW)
    by_table = {m["table"]: m for m in board.maintenance}
    assert by_table["scores.account_scores"]["action"] == "rewrite_data_files"
    assert by_table["features.account_features"]["status"] == "failed"
    page = render_html(board)
    assert 'id="maintenance"' in page and "rewrite_data_files" in page and "Queue: x" in page


# -- end to end ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 30) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def _seed(home: Path) -> list:
    catalog_cfg = CatalogConfig.embedded_rest(home)  # the running embedded REST catalog of ``home``
    catalog = catalog_cfg.load()
    ensure_tables(catalog)
    records = _records()
    IcebergLedgerHook(catalog_cfg).record_batches(records)
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField, StringType, TimestamptzType

    schema = Schema(NestedField(1, "table_name", StringType(), required=False),
                    NestedField(2, "action", StringType(), required=False),
                    NestedField(3, "status", StringType(), required=False),
                    NestedField(4, "finished_at", TimestamptzType(), required=False))
    table = catalog.create_table("warpspeed.maintenance_runs", schema=schema)
    table.append(pa.Table.from_pylist(
        [{"table_name": "scores.account_scores", "action": "expire_snapshots", "status": "succeeded",
          "finished_at": NOW}], schema=schema.as_arrow()))
    return records


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, sqs_endpoint: str, new_airflow_db: Callable[[], str],
    rest_catalog_for: Callable[[Path], object],
) -> Iterator[tuple[str, list, Path]]:
    """Start ``airflow api-server`` on loopback with the plugin and a seeded ledger."""
    from warpspeed.embedded.sqs_server import queues_on

    home = tmp_path_factory.mktemp("dash-home")
    rest_catalog_for(home)
    records = _seed(home)
    sqs: LocalSqs = queues_on(sqs_endpoint, "dash-requests")
    client = sqs.client()
    for i in range(7):
        client.send_message(QueueUrl=sqs.queue_url, MessageBody=json.dumps({"n": i}))
    env = airflow_env(home, sqs, db_url=new_airflow_db()) | {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
    }
    port = _free_port()  # the metadata database is a copy of the migrated template: no `db migrate`
    log_path = home / "api-server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), "api-server", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env=os.environ | env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if _get(f"{base}/api/v2/monitor/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("api-server did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(1)
        yield base, records, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.integration
def test_plugin_registers_nav_entry(api_server: tuple[str, list, Path]) -> None:
    base, _, _ = api_server
    status, body = _get(f"{base}/api/v2/plugins")
    assert status == 200
    plugins = {p["name"]: p for p in json.loads(body)["plugins"]}
    views = plugins["warpspeed"]["external_views"]
    assert [(v["name"], v["href"], v["destination"]) for v in views] == [("Warp Speed", "/warpspeed/", "nav")]
    assert plugins["warpspeed"]["fastapi_apps"][0]["url_prefix"] == "/warpspeed"


@pytest.mark.integration
def test_summary_json_reads_the_ledger_and_queue(api_server: tuple[str, list, Path]) -> None:
    base, records, _ = api_server
    status, body = _get(f"{base}/warpspeed/api/summary")
    assert status == 200
    data = json.loads(body)
    assert data["queue"] == {"depth": 7, "dead_letter_depth": 0, "error": None}
    assert data["batches"] == len(records) and len(data["windows"]) == 3
    assert data["cost_usd"] == pytest.approx(sum(r.cost_total_usd for r in records))
    assert data["batches_on_reused_clusters"] == 5
    assert [m["table"] for m in data["maintenance"]] == ["scores.account_scores"]
    assert data["ledger_error"] is None


@pytest.mark.integration
def test_dashboard_in_headless_chromium(api_server: tuple[str, list, Path], tmp_path: Path) -> None:
    base, records, _ = api_server
    url = f"{base}/warpspeed/"
    profile = tmp_path / "chromium-profile"
    dom = headless(profile, url, "--dump-dom", budget_ms=5000)
    assert "<h1>Warp Speed</h1>" in dom
    assert 'id="tile-queue"><div class="v">7</div>' in dom
    for heading in ("Recent windows", "Top tenants by cost", "Table maintenance", "Cost per window"):
        assert heading in dom
    assert "t-05" in dom and "expire_snapshots" in dom and dom.count("<svg") >= 4
    total = sum(r.cost_total_usd for r in records)
    assert f"${total:,.2f}" in dom

    shot = tmp_path / "warpspeed-dashboard.png"
    headless(profile, url, f"--screenshot={shot}", "--window-size=1280,1400", budget_ms=5000)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1280, 1400)
        colors = img.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 50, "the screenshot looks blank"
    # the chart colours are on screen: cost bars (#2e86c1), tenant bars (#28b463)
    palette = {rgb for _, rgb in colors}
    assert (0x2E, 0x86, 0xC1) in palette and (0x28, 0xB4, 0x63) in palette
