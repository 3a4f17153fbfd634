"""Issue 13's short soak: the live stack under hostile load, SIGKILLs and SQS faults, then the audit.

The lean version of ``make soak`` (which runs 5,000 requests over 10 windows with 12 kills):
500 requests over 3 one-minute windows, 6% hostile and 6% re-sent messages, 3 kills (one of
them the warm Spark engine while it runs a batch, one the Iceberg REST catalog server, which
its supervisor restarts on its port), 5% of the pipeline's SQS calls (most of those that
change the queue applied with their reply lost) and 2% of its S3 requests (503 SlowDown,
resets, delays) failed. The
auditor reads only durable records (queue, DLQ, manifests, ledger, scores table) and must find
nothing lost, nothing scored twice and no DLQ entry without a reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from warpspeed.embedded.postgres import PostgresServer
from warpspeed.embedded.soak.chaos import ChaosPlan
from warpspeed.embedded.soak.producer import SoakLoad
from warpspeed.embedded.soak.run import SoakConfig, run_soak

pytestmark = pytest.mark.live

SHORT = SoakConfig(
    load=SoakLoad(requests=500, windows=3, chunks_per_window=4),
    # the catalog: the cheapest server to kill (back in 7-8 s; ElasticMQ took 18-21 s and holds the producer)
    chaos=ChaosPlan(kills=3, min_gap=20, max_gap=40, at_least={"engine": 1, "catalog": 1}),
    fault_rate=0.05,
    reply_lost_share=0.8,
    min_windows=3,
    drain_timeout=900,  # the drain ends once 3 runs have finished; a loaded machine needs longer
)


def test_short_soak_loses_nothing_doubles_nothing_and_dead_letters_with_reasons(
    tmp_path: Path, postgres: PostgresServer, new_airflow_db: Callable[[], str]
) -> None:
    report = run_soak(tmp_path / "home", SHORT, postgres=postgres, db_url=new_airflow_db())
    f = report.figures
    print("SOAK " + json.dumps(f, sort_keys=True))
    assert (f["lost"], f["scored_twice"], f["dead_lettered_without_reason"], f["unaccounted"]) == (0, 0, 0, 0), (
        report.examples)
    assert f["kills"] >= 3 and f["windows"] >= 3 and f["valid"] == 500
    assert f["kills_by_kind"].get("engine", 0) >= 1  # a Spark batch was killed mid-run on the warm engine
    # the catalog server was killed and came back (PostgreSQL here is the session's: make soak kills that one)
    assert f["kills_by_kind"].get("catalog", 0) >= 1
    assert len(f["recovered_s"]["catalog"]) == f["kills_by_kind"]["catalog"]
    assert f["sqs_faults_by_kind"].get("ReplyLost", 0) >= 1  # calls applied whose answer never came back
    assert f["hostile_sent"] >= 0.05 * 500 and f["duplicates_sent"] >= 0.05 * 500
    # an unknown version is refused to the DLQ by the plan, unless a valid request for its pair superseded it
    assert f["hostile_dead_lettered_with_reason"] + f["hostile_superseded_with_record"] == f["hostile_sent"]
    assert f["hostile_scored"] == 0
    # most valid requests are distinct (tenant, model) pairs and really get scored
    assert f["scored_exactly_once"] > f["superseded_with_record"]
    assert f["scored_exactly_once"] + f["superseded_with_record"] + f["valid_dead_lettered_with_reason"] == 500
    assert f["failed_windows"] == 0
    # every table and document is on the S3 server, and a share of its requests failed on purpose
    assert f["s3_requests"] > 0 and f["s3_faults"] > 0
