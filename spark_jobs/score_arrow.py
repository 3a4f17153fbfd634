"""Single-node entry point: score one small batch manifest with pyiceberg, Arrow and NumPy.

The Spark job's twin for batches under a workload's ``single_node_max_rows`` (the planner
routes them): no JVM, no Spark session. It reads the same ``warpspeed.batch/v1`` manifest,
pins the features table's current snapshot, reads only the batch's tenants, scores
``expression`` and ``mlflow`` models (:mod:`spark_jobs.arrow_scoring`), creates the scores
table as the Spark job would, overwrites exactly the batch's (tenant, model) slices in one
atomic Iceberg commit (retried on conflicts with other writers), and writes the same
``warpspeed.batch_result/v1`` summary with the same exit codes.

Usage (a plain Python step on an EMR primary node, or locally)::

    PYTHONPATH=spark_jobs.zip python3 -m spark_jobs.score_arrow --batch-manifest <uri> \\
        --catalog warpspeed [--catalog-property type=glue --catalog-property warehouse=s3://...]

Without ``--catalog-property`` pyiceberg reads the catalog from ``~/.pyiceberg.yaml`` or
``PYICEBERG_CATALOG__<NAME>__*`` variables (where secrets belong). In process:
:func:`score_manifest`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from spark_jobs.batch_summary import batch_summary
from spark_jobs.score_batch import BATCH_SCHEMA

ENGINE = "arrow"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the job's command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-manifest", required=True, help="URI of the batch manifest JSON")
    parser.add_argument("--catalog", default="warpspeed", help="name of the Iceberg catalog holding the tables")
    parser.add_argument("--catalog-property", action="append", default=[], metavar="KEY=VALUE",
                        help="a pyiceberg catalog property (repeatable)")
    args = parser.parse_args(argv)
    for item in args.catalog_property:
        if "=" not in item:
            parser.error(f"--catalog-property {item!r} is not KEY=VALUE")
    return args


def load_models(manifest: Mapping[str, Any], keys: set[tuple[str, str]], columns: Mapping[str, str],
                table: str, workdir: str | None = None, *, properties: Mapping[str, str] | None = None
                ) -> tuple[dict, dict, dict]:
    """Load and check each (model, version); return (loaded, pyfuncs, errors) keyed by (model, version).

    ``columns`` (name -> Iceberg type) is checked as the Spark job checks it
    (:func:`spark_jobs.flavours.check_inputs`): a missing or non-numeric input fails only its members.
    """
    from spark_jobs.arrow_io import load_model
    from spark_jobs.flavours import check_inputs, default_spec
    from spark_jobs.models import ModelError

    specs = manifest.get("models") or {}
    models, pyfuncs, errors = {}, {}, {}
    for model, version in sorted(keys):
        try:
            spec = specs.get(model) or default_spec(manifest["models_uri"])
            loaded, pyfunc = load_model(model, version, spec, workdir, properties or {})
            check_inputs(loaded, columns, table)
            models[(model, version)] = loaded
            if pyfunc is not None:
                pyfuncs[(model, version)] = pyfunc
        except ModelError as err:
            errors[(model, version)] = str(err)
    return models, pyfuncs, errors


def read_features(table: Any, tenant_column: str, tenants: Sequence[str], columns: Sequence[str]) -> tuple[Any, Any]:
    """Return (current snapshot id, the batch tenants' rows of ``columns``) read at that snapshot."""
    from pyiceberg.expressions import In

    snapshot = table.current_snapshot()
    snapshot_id = snapshot.snapshot_id if snapshot is not None else None
    row_filter = In(tenant_column, list(tenants))  # type: ignore[call-arg,arg-type]
    scan = table.scan(row_filter=row_filter, selected_fields=tuple(columns), snapshot_id=snapshot_id)
    return snapshot_id, scan.to_arrow()


def run_batch(catalog: Any, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Score a batch and return its result summary (the Spark job's, field for field).

    Downloaded MLflow models live in a temporary folder removed when the batch ends.
    """
    with tempfile.TemporaryDirectory(prefix="warpspeed-arrow-") as workdir:
        return _run_batch(catalog, manifest, workdir)


def _run_batch(catalog: Any, manifest: Mapping[str, Any], workdir: str) -> dict[str, Any]:
    from spark_jobs.arrow_io import ensure_scores_table, slice_filter
    from spark_jobs.arrow_scoring import missing_feature_counts, score_members, with_batch_columns
    from spark_jobs.iceberg_retry import commit_with_retries

    started = time.monotonic()
    members = manifest["members"]
    tenant_column = manifest.get("tenant_column") or "tenant_id"
    entity_key = list(manifest.get("entity_key") or ["account_id"])
    tenants = sorted({m["tenant_id"] for m in members})
    features_table, scores_table = manifest["features_table"], manifest["scores_table"]
    source = catalog.load_table(features_table)
    all_columns = {f.name: str(f.field_type) for f in source.schema().fields}
    for column in (tenant_column, *entity_key):
        if column not in all_columns:
            raise ValueError(f"{features_table} has no column {column!r} (tenant_column/entity_key of the workload)")
    models, pyfuncs, model_errors = load_models(  # the table named as the Spark job names it: same reasons
        manifest, {(m["model"], m["model_version"]) for m in members}, all_columns,
        f"{catalog.name}.{features_table}", workdir, properties=catalog.properties,
    )
    feature_columns = sorted({f for model in models.values() for f in model.inputs})
    wanted = list(dict.fromkeys([tenant_column, *entity_key, *feature_columns]))
    features_snapshot, features = read_features(source, tenant_column, tenants, wanted)
    per_tenant = missing_feature_counts(features, feature_columns, tenant_column)
    ok_members = [m for m in members if (m["model"], m["model_version"]) in models]
    scored_at = datetime.now(UTC)
    pairs = [(m["tenant_id"], m["model"]) for m in ok_members]
    scores_snapshot = None
    if pairs:
        scored = score_members(features, [(m["tenant_id"], m["model"], m["model_version"]) for m in ok_members],
                               models, tenant_column, entity_key, pyfuncs=pyfuncs)
        target = ensure_scores_table(catalog, scores_table, source, tenant_column, entity_key)
        rows = with_batch_columns(scored, manifest["batch_id"], scored_at, target.schema().as_arrow())
        condition = slice_filter(pairs, tenant_column)

        def overwrite(table: Any) -> Any:
            table.overwrite(rows, overwrite_filter=condition)
            return table.current_snapshot()

        committed = commit_with_retries(lambda: catalog.load_table(scores_table), overwrite)
        scores_snapshot = committed.snapshot_id if committed is not None else None

    return batch_summary(
        manifest, flavours={k: v.flavour for k, v in models.items()}, errors=model_errors, per_tenant=per_tenant,
        snapshots=(features_snapshot, scores_snapshot), scored_at=scored_at, started=started,
    )


def read_manifest(uri: str, properties: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the batch manifest at ``uri``, refusing a document of another schema.

    :param properties: the catalog's properties (how ``s3://`` is reached).
    """
    from spark_jobs.arrow_io import read_text

    doc = json.loads(read_text(uri, properties or {}))
    if not isinstance(doc, dict) or doc.get("schema") != BATCH_SCHEMA:
        raise ValueError(f"{uri} is not a {BATCH_SCHEMA} document")
    return doc


def exit_code(summary: Mapping[str, Any]) -> tuple[int, str | None]:
    """Return the Spark job's exit code for ``summary`` (0, 2 failed, 3 partial) and its error line."""
    if summary["status"] == "succeeded":
        return 0, None
    errors = sorted({m["error"] for m in summary["members"] if m["error"]})
    line = (f"WarpSpeedModelError: {summary['status']} batch, {len(errors)} model version(s) unusable: "
            f"{'; '.join(errors)[:1500]}")
    return (2 if summary["status"] == "failed" else 3), line


def score_manifest(manifest_uri: str, catalog: str = "warpspeed",
                   properties: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Score the batch at ``manifest_uri`` in this process; write its summary; return (exit code, summary)."""
    from spark_jobs.arrow_io import load_catalog, write_text

    loaded = load_catalog(catalog, properties or {})  # its properties say how documents on S3 are reached
    manifest = read_manifest(manifest_uri, loaded.properties)
    summary = run_batch(loaded, manifest)
    write_text(manifest["summary_uri"], json.dumps(summary, indent=1, sort_keys=True), loaded.properties)
    return exit_code(summary)[0], summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; the exit code tells the submitter whether the batch failed."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    properties = dict(item.split("=", 1) for item in args.catalog_property)
    code, summary = score_manifest(args.batch_manifest, args.catalog, properties)
    print(f"WARPSPEED_RESULT {json.dumps({k: summary[k] for k in ('batch_id', 'status', 'rows')})}", flush=True)
    line = exit_code(summary)[1]
    if line:
        print(line, file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
