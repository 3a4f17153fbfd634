"""``make demo``: one scoring window end to end on the embedded stack.

Starts an SQS server on loopback, seeds models, features and ~50 requests, runs
``airflow dags test warpspeed_scoring`` for the window that just ended, checks the Iceberg
scores with pyiceberg, stops what it started and prints a summary ending in ``SUMMARY {json}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import seed
from warpspeed.embedded.airflow_db import ensure_airflow_db
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import EmbeddedStack, dags_test, embedded_stack, uses_embedded_s3
from warpspeed.ledger.tables import BATCH_RUNS_TABLE, FEATURES_TABLE, SCORES_TABLE, ensure_tables
from warpspeed.window.manifests import IntakeManifest, WindowLayout, window_id_for
from warpspeed.window.rule import floor_to_window

DagRunner = Callable[[str, str, dict[str, str], Path], int]
"""Runs ``airflow dags test`` (dag id, logical date, environment, log file); returns the exit code."""


@dataclass(frozen=True)
class PairCheck:
    """How one requested (tenant, model) pair looks in the scores table."""

    tenant_id: str
    model: str
    accounts: int
    scores: int
    distinct_accounts: int

    @property
    def exact(self) -> bool:
        """Tell whether every account has exactly one score."""
        return self.scores == self.accounts == self.distinct_accounts


def check_pairs(catalog: Any, pairs: set[tuple[str, str]]) -> list[PairCheck]:
    """Count scores per requested pair against the features table (read with pyiceberg)."""
    import pyarrow.compute as pc

    tenants = sorted({t for t, _ in pairs})
    from pyiceberg.expressions import In, Reference
    from pyiceberg.expressions.literals import literal

    tenant_in = In(term=Reference("tenant_id"), values={literal(t) for t in tenants})
    features = catalog.load_table(FEATURES_TABLE).scan(
        row_filter=tenant_in, selected_fields=("tenant_id", "account_id")
    ).to_arrow()
    scores = catalog.load_table(SCORES_TABLE).scan(
        row_filter=tenant_in, selected_fields=("tenant_id", "model", "account_id")
    ).to_arrow()
    accounts = Counter(features.column("tenant_id").to_pylist())
    checks = []
    for tenant, model in sorted(pairs):
        mask = pc.and_(pc.equal(scores["tenant_id"], tenant), pc.equal(scores["model"], model))
        ids = scores.filter(mask).column("account_id")
        checks.append(PairCheck(tenant, model, accounts[tenant], len(ids), len(pc.unique(ids))))
    return checks


def run_demo(
    tenants: int = 20, requests: int = 50, invalid: int = 2, stack: EmbeddedStack | None = None,
    settings: WarpSpeedSettings | None = None,
) -> dict[str, Any]:
    """Run one window end to end; return the summary (raises if the DAG run fails).

    :param stack: running embedded servers of the state folder; started (and stopped) here if not given.
    :param settings: the state folder and its storage (default: ``[warpspeed]`` defaults, everything on
        the state folder's S3 server; a ``file://`` storage prefix runs the window on local folders).
    """
    settings = settings or WarpSpeedSettings.from_mapping({})
    with ExitStack() as servers:
        if stack is None:
            stack = servers.enter_context(
                embedded_stack(settings.home, settings.jars_dir, s3=uses_embedded_s3(settings)))
            servers.callback(stop_engine, settings.home)  # the warm Spark engine goes with the stack it used
        return run_window(settings, stack.sqs, stack.airflow_env(), tenants, requests, invalid=invalid)


def run_window(
    settings: WarpSpeedSettings, sqs: LocalSqs, env: dict[str, str], tenants: int = 20, requests: int = 50,
    *, invalid: int = 2, migrate: bool = True, run_dag: DagRunner = dags_test, window_start: datetime | None = None,
) -> dict[str, Any]:
    """Seed the state folder and the queue, run the window that just ended; return the summary.

    :param sqs: the request queue and its DLQ, running.
    :param env: the Airflow environment of the DAG run (:func:`warpspeed.embedded.stack.airflow_env`).
    :param migrate: migrate Airflow's metadata database first (``False``: it is already migrated).
    :param run_dag: runs the DAG (:data:`DagRunner`); another runner may keep one interpreter for
        several runs.
    :param window_start: the window to run (its start); None: the one that just ended (a caller
        running one window twice passes the first run's, since the clock may cross a window's end).
    """
    started = time.monotonic()
    home = settings.home
    catalog = settings.catalog.load()
    created = ensure_tables(catalog)
    seed.publish_seed_models(settings.storage_prefix, settings.storage())
    tenant_list = seed.tenant_ids(tenants)
    feature_rows = seed.write_features(catalog, seed.feature_rows(tenant_list))
    print(f"state folder {home}; tables created: {created or 'none (already there)'}; "
          f"{feature_rows} feature rows for {tenants} tenants")

    if window_start is None:
        window_start = floor_to_window(datetime.now(UTC), settings.window_minutes) - timedelta(
            minutes=settings.window_minutes
        )
    window_id = window_id_for(window_start)
    docs = list(seed.scoring_requests(tenant_list, requests))
    bodies = [json.dumps(d) for d in docs] + seed.invalid_bodies(invalid)
    seed.send_bodies(sqs.client(), sqs.queue_url, bodies)
    print(f"SQS server {sqs.endpoint_url}: sent {len(docs)} requests and {invalid} invalid messages")
    if migrate:
        ensure_airflow_db(env)
    log_path = home / "logs" / f"dags_test_{window_id}.log"
    print(f"airflow dags test warpspeed_scoring {window_start.isoformat()} (log: {log_path})")
    code = run_dag("warpspeed_scoring", window_start.isoformat(), env, log_path)
    dlq_depth = int(
        sqs.client().get_queue_attributes(
            QueueUrl=sqs.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    if code != 0:
        tail = log_path.read_text(encoding="utf-8").splitlines()[-40:]
        raise SystemExit("warpspeed_scoring failed:\n" + "\n".join(tail))

    layout = WindowLayout(settings.storage_prefix, window_id)
    storage = settings.storage()
    intake = IntakeManifest.from_json(storage.read_text(layout.intake_uri))
    plan = json.loads(storage.read_text(layout.plan_uri))
    pairs = {(d["tenant_id"], d["model"]) for d in docs}
    checks = check_pairs(catalog, pairs)
    ledger = catalog.load_table(BATCH_RUNS_TABLE).scan().to_arrow().to_pylist()
    planned = {b["batch_id"] for b in plan["batches"]}  # this run's batches, not an earlier run's
    window_rows = [r for r in ledger if r["window_id"] == window_id and r["batch_id"] in planned]
    bad = [c for c in checks if not c.exact]
    summary = {
        "window_id": window_id,
        "window_start": window_start.isoformat(),
        "requests": len(docs),
        "invalid": invalid,
        "dead_lettered": dlq_depth,
        "requests_in_manifest": len(intake.requests),
        "superseded": len(plan["superseded"]),
        "batches": len(plan["batches"]),
        "workloads": sorted({b["workload"] for b in plan["batches"]}),
        "tenants": len({t for t, _ in pairs}),
        "pairs": len(pairs),
        "pairs_exact": len(checks) - len(bad),
        "rows_scored": sum(int(r["rows"]) for r in window_rows),
        "ledger_rows": len(window_rows),
        "seconds": round(time.monotonic() - started, 1),
    }
    print()
    print(f"Window {window_id}: {summary['requests']} requests ({summary['superseded']} superseded), "
          f"{invalid} invalid -> DLQ ({dlq_depth} there now)")
    for batch in plan["batches"]:
        print(f"  batch {batch['batch_id']:<28} {batch['workload']:<8} {len(batch['tenants']):>3} tenants "
              f"{batch['estimated_rows']:>8} est. rows")
    for row in window_rows:
        print(f"  ledger {row['batch_id']:<27} {row['status']:<9} {row['rows']:>8} rows "
              f"spark {row['spark_seconds'] or 0:.1f}s total {row['run_seconds']:.1f}s")
    print(f"{summary['pairs_exact']}/{summary['pairs']} (tenant, model) pairs have exactly one score per account; "
          f"{summary['rows_scored']} rows scored in {summary['seconds']} s")
    if bad:
        for c in bad:
            print(f"  MISMATCH {c}")
        raise SystemExit("some requested pairs do not have exactly one score per account")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the demo and print the machine-readable last line."""
    summary = run_demo()
    print("SUMMARY " + json.dumps(summary, sort_keys=True))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
