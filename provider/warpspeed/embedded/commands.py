"""The ``warpspeed`` subcommands of the embedded stack and of a user's day on it.

``setup`` (jars), ``stack up|down|env|status`` (servers in the background), ``tables
create|load|show`` (feature tables), ``models publish`` (a model version into the registry),
``send`` (requests onto the queue), ``scores`` (one slice of a scores table), ``demo``. Handlers
import what they need when they run; registering them imports nothing heavy.

``setup`` and ``stack`` read the state folder and jars folder from the environment
(``AIRFLOW__WARPSPEED__HOME``/``WARPSPEED_HOME``, ``…JARS_DIR``), never from an Airflow
config file; the others read ``[warpspeed]`` the way tasks do (after ``eval "$(warpspeed stack
env)"``: the embedded stack), without importing Airflow where the environment and the config
file say it all (:mod:`warpspeed.embedded.cli_settings`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ENV_PREFIX = "AIRFLOW__WARPSPEED__"


def register(sub: Any) -> None:
    """Add the embedded stack's subcommands to the ``warpspeed`` command's subparsers."""
    setup = sub.add_parser("setup", help="fetch the jars of local Spark and the embedded servers (Maven), "
                           "compile the REST catalog's launcher (JDK 17)")
    setup.add_argument("--jars-dir", type=Path, help="default: [warpspeed] jars_dir, $WARPSPEED_JARS_DIR, <home>/jars")
    setup.add_argument("--force", action="store_true", help="fetch again even when up to date")
    setup.set_defaults(run=run_setup)

    stack = sub.add_parser("stack", help="run the embedded servers in the background: up, down, env, status")
    stack.add_argument("action", choices=("up", "down", "env", "status"))
    stack.add_argument("--dags", type=Path, help="the DAG folder `env` names (default: $WARPSPEED_DAGS_FOLDER, ./dags)")
    stack.set_defaults(run=run_stack)

    tables = sub.add_parser("tables", help="create a feature table from a schema, load rows, show one")
    tables.add_argument("action", choices=("create", "load", "show"))
    tables.add_argument("table", help="namespace.table, e.g. crm.org_health")
    tables.add_argument("file", nargs="?", type=Path, help="load: rows (.csv with a header, .parquet, .jsonl)")
    tables.add_argument("--schema", type=Path, help="create: JSON/YAML mapping of column -> type")
    tables.add_argument("--partition-by", action="append", default=[], metavar="COLUMN",
                        help="create: identity-partition by this column (e.g. the tenant column); repeatable")
    tables.add_argument("--overwrite", action="store_true", help="load: replace the rows instead of appending")
    tables.set_defaults(run=run_tables)

    models = sub.add_parser("models", help="publish a model version where its workload loads it from")
    models.add_argument("action", choices=("publish",))
    models.add_argument("model")
    models.add_argument("version", help="v1, v2, …")
    models.add_argument("path", type=Path, help="an MLflow model or Spark ML pipeline folder, or an expression .json")
    _workloads_option(models)
    models.set_defaults(run=run_models)

    send = sub.add_parser("send", help="put scoring requests on the queue (from flags or a file)")
    send.add_argument("--file", type=Path, help="JSON lines or a JSON array of request documents")
    send.add_argument("--workload")
    send.add_argument("--model")
    send.add_argument("--version", default="v1")
    send.add_argument("--tenant", action="append", default=[], help="one request per tenant; repeatable")
    send.add_argument("--priority", choices=("high", "normal", "low"), default="normal")
    send.add_argument("--accounts", type=int, default=0, help="estimated_accounts (sizes batches)")
    send.add_argument("--no-check", action="store_true", help="send even what the collect task will refuse")
    _workloads_option(send)
    send.set_defaults(run=run_send)

    scores = sub.add_parser("scores", help="print (tenant, model) slices of a workload's scores table")
    scores.add_argument("--tenant", action="append", required=True, help="a tenant; repeatable")
    scores.add_argument("--model", required=True)
    scores.add_argument("--version", help="one model version (default: every version)")
    scores.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")
    scores.add_argument("--limit", type=int, help="print at most this many rows")
    _workloads_option(scores)
    scores.set_defaults(run=run_scores)

    demo = sub.add_parser("demo", help="score one window end to end on the embedded stack (make demo)")
    demo.set_defaults(run=run_demo)


def _workloads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workloads", type=Path, help="the bundle's workloads.yaml (default: "
                        "$WARPSPEED_WORKLOADS_FILE, else <$WARPSPEED_DAGS_FOLDER or ./dags>/config/workloads.yaml)")


def workloads_file(given: Path | None) -> Path:
    """Return the bundle's workloads file: ``given``, ``$WARPSPEED_WORKLOADS_FILE``, else the DAG folder's."""
    if given is not None:
        return given
    if os.environ.get("WARPSPEED_WORKLOADS_FILE"):
        return Path(os.environ["WARPSPEED_WORKLOADS_FILE"])
    return Path(os.environ.get("WARPSPEED_DAGS_FOLDER") or "dags") / "config" / "workloads.yaml"


def env_settings() -> Any:
    """Return settings from ``AIRFLOW__WARPSPEED__*`` variables only (no Airflow config file is read)."""
    from warpspeed.config.settings import WarpSpeedSettings

    values = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    return WarpSpeedSettings.from_mapping(values)


def airflow_settings() -> Any:
    """Return settings read as tasks read them (``[warpspeed]``, its connections); Airflow only if it must."""
    from warpspeed.config.settings import load_settings
    from warpspeed.embedded.cli_settings import settings_without_airflow

    settings = settings_without_airflow()
    return settings if settings is not None else load_settings()


def aws_client(service: str, conn_id: str) -> Any:
    """Return a boto3 client of ``service`` for AWS connection ``conn_id``; Airflow's hook only if it must."""
    from warpspeed.embedded.cli_settings import aws_client_without_airflow

    client = aws_client_without_airflow(service, conn_id)
    if client is not None:
        return client
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=conn_id, client_type=service).get_conn()


def run_setup(args: argparse.Namespace) -> int:
    """Fetch the jars (nothing when they are up to date)."""
    from warpspeed.embedded.jars import fetch
    from warpspeed.embedded.rest_catalog import launcher_jar

    jars_dir = args.jars_dir or env_settings().jars_dir
    print(f"fetching jars into {jars_dir} with Maven (a few minutes the first time)", flush=True)
    made = fetch(jars_dir, force=args.force)
    print(f"{jars_dir}: {'fetched' if made else 'up to date, nothing fetched'}")
    # the REST catalog's launcher (javac), now rather than at the first `stack up`; nothing if up to date
    print(f"REST catalog launcher: {launcher_jar(jars_dir)}")
    return 0


def run_stack(args: argparse.Namespace) -> int:
    """Start, stop, describe the background stack of the state folder."""
    from warpspeed.embedded import daemon

    settings = env_settings()
    if args.action == "up":
        return daemon.up(settings.home, settings.jars_dir)
    if args.action == "down":
        return daemon.down(settings.home)
    if args.action == "status":
        return daemon.status(settings.home)
    print(daemon.env_lines(settings.home, args.dags, settings.jars_dir))
    return 0


def run_tables(args: argparse.Namespace) -> int:
    """Create, load or show a table in the configured catalog."""
    from warpspeed.embedded import feature_tables
    from warpspeed.exceptions import WarpSpeedConfigError

    catalog = airflow_settings().catalog.load()
    if args.action == "create":
        if args.schema is None:
            raise WarpSpeedConfigError("tables create needs --schema FILE (a mapping of column -> type)")
        feature_tables.create_table(catalog, args.table, feature_tables.read_schema_file(args.schema),
                                    args.partition_by)
        print(f"created {args.table}")
    elif args.action == "load":
        if args.file is None:
            raise WarpSpeedConfigError("tables load needs the rows file: warpspeed tables load TABLE FILE")
        rows = feature_tables.load_rows(catalog, args.table, args.file, overwrite=args.overwrite)
        print(f"{'replaced the rows of' if args.overwrite else 'appended to'} {args.table}: {rows} rows")
    if args.action in ("create", "load", "show"):
        print(feature_tables.describe(catalog, args.table))
    return 0


def run_models(args: argparse.Namespace) -> int:
    """Publish a model version to its registry URI."""
    from warpspeed.config.workloads import WorkloadCatalog
    from warpspeed.embedded.registry import publish, version_uri

    settings = airflow_settings()
    uri = version_uri(WorkloadCatalog.load(workloads_file(args.workloads)), args.model, args.version,
                      settings.storage_prefix)

    # storage's client: the embedded S3 server's own (the AWS connection's endpoint is SQS's), else AWS's
    written = publish(args.path, uri, lambda: settings.s3_client(lambda: aws_client("s3", settings.aws_conn_id)))
    print(f"published {args.model} {args.version} to {uri} ({len(written)} files)")
    return 0


def run_send(args: argparse.Namespace) -> int:
    """Send requests built from flags or read from a file."""
    from warpspeed.config.workloads import WorkloadCatalog
    from warpspeed.embedded.send import docs_from_file, refusals, request_doc, send_docs
    from warpspeed.exceptions import WarpSpeedConfigError

    if args.file is not None:
        docs = docs_from_file(args.file)
    elif args.workload and args.model and args.tenant:
        docs = [request_doc(args.workload, args.model, args.version, t, priority=args.priority,
                            accounts=args.accounts) for t in args.tenant]
    else:
        raise WarpSpeedConfigError("send needs --file FILE, or --workload, --model and at least one --tenant")
    if not args.no_check:
        refused = refusals(docs, WorkloadCatalog.load(workloads_file(args.workloads)).allowed_models)
        if refused:
            raise WarpSpeedConfigError("nothing sent; the collect task would refuse:\n  " + "\n  ".join(refused))
    settings = airflow_settings()
    try:
        queue_url, _ = settings.require_queues()
    except WarpSpeedConfigError as err:
        raise WarpSpeedConfigError(f"{err}; for the embedded stack: eval \"$(warpspeed stack env)\"") from None
    sent = send_docs(aws_client("sqs", settings.aws_conn_id), queue_url, docs)
    for doc in docs:
        print(f"sent {doc['request_id']}: {doc['workload']}/{doc['model']} {doc['model_version']} "
              f"for {doc['tenant_id']}")
    print(f"{sent} requests on {queue_url}")
    return 0


def run_scores(args: argparse.Namespace) -> int:
    """Print one slice of a scores table."""
    from warpspeed.config.workloads import WorkloadCatalog
    from warpspeed.embedded.scores import read_slice, render
    from warpspeed.exceptions import WarpSpeedConfigError

    catalog = WorkloadCatalog.load(workloads_file(args.workloads))
    owners = [w for w in catalog.workloads.values() if args.model in w.models]
    if not owners:
        raise WarpSpeedConfigError(f"no workload runs model {args.model!r}")
    rows = read_slice(airflow_settings().catalog.load(), owners[0], args.tenant, args.model, args.version)
    if rows.num_rows == 0:
        print(f"no scores of {args.model} for {', '.join(args.tenant)} in {owners[0].tables.scores_table}",
              file=sys.stderr)
        return 1
    print(render(rows, args.format, args.limit))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Run ``make demo``'s window (on servers of its own: refused while ``warpspeed stack up`` runs them)."""
    from warpspeed.embedded.daemon import read_state
    from warpspeed.embedded.demo import main as demo_main
    from warpspeed.exceptions import WarpSpeedConfigError

    home = env_settings().home
    if read_state(home) is not None:
        raise WarpSpeedConfigError(f"the stack of {home} runs in the background and the demo starts servers of "
                                   "its own: `warpspeed stack down` first, or set WARPSPEED_HOME to another folder")
    return demo_main()
