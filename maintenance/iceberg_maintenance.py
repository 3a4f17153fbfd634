"""Spark entry point: run one table's Iceberg maintenance plan with Iceberg's Spark procedures.

Usage (EMR step on the ``maintenance`` profile, or local ``spark-submit``)::

    spark-submit iceberg_maintenance.py --plan <plan.json URI> --result <result.json URI> --catalog warpspeed

The plan (``warpspeed.maintenance_plan/v1``, written by the Airflow planner) lists the actions
in order; the due ones run one after another in this single application, so two maintenance
actions never touch the table at once. Procedures used: ``rewrite_data_files`` (bin-pack,
filtered to the due partitions, partial progress), ``expire_snapshots`` (older_than +
retain_last, streamed results), ``rewrite_manifests`` and ``remove_orphan_files``.
This file must not import ``warpspeed`` (only ``spark_jobs`` is shipped to the cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

PLAN_SCHEMA = "warpspeed.maintenance_plan/v1"
RESULT_SCHEMA = "warpspeed.maintenance_result/v1"
MAX_LISTED_ROWS = 50


def sql_string(text: str) -> str:
    """Return ``text`` as a Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def timestamp_literal(iso: str) -> str:
    """Return a Spark ``TIMESTAMP`` literal for an ISO-8601 instant (normalised to UTC)."""
    moment = datetime.fromisoformat(iso)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'"


def _options_map(options: Mapping[str, Any]) -> str:
    items = ", ".join(f"{sql_string(str(k))}, {sql_string(str(v))}" for k, v in sorted(options.items()))
    return f"map({items})"


def procedure_call(catalog: str, table: str, action: Mapping[str, Any]) -> str:
    """Return the ``CALL`` statement of one planned action."""
    name = action["action"]
    params = action.get("params") or {}
    args = [f"table => {sql_string(table)}"]
    if name == "rewrite_data_files":
        args.append("strategy => 'binpack'")
        if params.get("where"):
            args.append(f"where => {sql_string(params['where'])}")
        if params.get("options"):
            args.append(f"options => {_options_map(params['options'])}")
    elif name == "expire_snapshots":
        args += [
            f"older_than => {timestamp_literal(params['older_than'])}",
            f"retain_last => {int(params['retain_last'])}",
            "stream_results => true",
        ]
    elif name == "rewrite_manifests":
        pass
    elif name == "remove_orphan_files":
        args.append(f"older_than => {timestamp_literal(params['older_than'])}")
    else:
        raise ValueError(f"unknown maintenance action {name!r}")
    return f"CALL {catalog}.system.{name}({', '.join(args)})"


def due_calls(plan: Mapping[str, Any], catalog: str) -> list[tuple[str, str]]:
    """Return ``(action, CALL statement)`` for the plan's due actions, in plan order."""
    if plan.get("schema") != PLAN_SCHEMA:
        raise ValueError(f"not a {PLAN_SCHEMA} document")
    return [(a["action"], procedure_call(catalog, plan["table"], a)) for a in plan["actions"] if a.get("due")]


def summarise_rows(action: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Reduce a procedure's output rows to counts (orphan listings are truncated)."""
    if action == "remove_orphan_files":
        files = [str(r.get("orphan_file_location")) for r in rows]
        return {"orphans_removed": len(files), "orphan_files": files[:MAX_LISTED_ROWS]}
    out: dict[str, Any] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, int | float):
                out[key] = out.get(key, 0) + value
    return out


def run_plan(spark: Any, plan: Mapping[str, Any], catalog: str) -> dict[str, Any]:
    """Run the due actions in order; stop at the first failure and report it."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    results: list[dict[str, Any]] = []
    status = "succeeded"
    for action, statement in due_calls(plan, catalog):
        spark.sparkContext.setJobDescription(f"warpspeed maintenance {plan['table']}: {action}")
        print(f"WARPSPEED_ACTION {json.dumps({'table': plan['table'], 'action': action, 'sql': statement})}",
              flush=True)
        started = time.monotonic()
        try:
            rows = [r.asDict() for r in spark.sql(statement).collect()]
        except Exception as err:  # report which action failed, then stop: later ones assume it ran
            results.append({"action": action, "sql": statement, "status": "failed",
                            "error": f"{type(err).__name__}: {str(err)[:2000]}",
                            "seconds": round(time.monotonic() - started, 3)})
            status = "failed"
            break
        results.append({"action": action, "sql": statement, "status": "succeeded",
                        "seconds": round(time.monotonic() - started, 3), **summarise_rows(action, rows)})
    return {"schema": RESULT_SCHEMA, "table": plan["table"], "status": status, "actions": results,
            "finished_at": datetime.now(UTC).isoformat()}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the job's command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True, help="URI of the table's maintenance plan JSON")
    parser.add_argument("--result", required=True, help="URI where the result JSON is written")
    parser.add_argument("--catalog", default="warpspeed", help="Spark catalog holding the table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan; exit 2 if an action failed (the result document says which)."""
    from pyspark.sql import SparkSession

    from spark_jobs.jobio import read_text, write_text

    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("warpspeed-maintenance").getOrCreate()
    try:
        plan = json.loads(read_text(spark, args.plan))
        result = run_plan(spark, plan, args.catalog)
        write_text(spark, args.result, json.dumps(result, indent=1, sort_keys=True, default=str))
        brief = {"table": result["table"], "status": result["status"],
                 "actions": [(a["action"], a["status"]) for a in result["actions"]]}
        print(f"WARPSPEED_RESULT {json.dumps(brief)}", flush=True)
        return 0 if result["status"] == "succeeded" else 2
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
