"""Run a soak: the live stack, the soak producer, SQS faults and the chaos loop; then audit.

``python -m warpspeed.embedded.soak.run`` (``make soak``) prints progress, then one line
``SOAK {json}`` and exits 1 when anything was lost, scored twice, dead-lettered without a
reason or unaccounted for. Settings come from the environment (``SOAK_REQUESTS``,
``SOAK_WINDOWS``, ``SOAK_KILLS``, ``SOAK_FAULT_RATE`` for SQS, ``SOAK_S3_FAULT_RATE`` for S3,
``SOAK_BACKEND``: ``local``, the default, or ``emr``, the production rehearsal, see
:mod:`~warpspeed.embedded.soak.backends`); the state folder is ``$WARPSPEED_HOME/soak`` (kept for
inspection, replaced on the next run). The chaos kills at least once each of
:data:`~warpspeed.embedded.soak.chaos.MUST_KILL` (the warm engine mid-batch, every embedded
server, the api-server and the dag-processor; on ``emr`` :data:`~.backends.EMR_MUST_KILL`) when
``SOAK_KILLS`` allows.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warpspeed.compute.local.engine import read_handle
from warpspeed.config.s3 import COMPONENTS, STACK
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.airflow_rest import SCORING_DAG
from warpspeed.embedded.live import LiveStack
from warpspeed.embedded.s3_proxy import S3Faults
from warpspeed.embedded.soak.audit import SoakReport, audit
from warpspeed.embedded.soak.backends import check_backend, must_kill, soak_stack, weights
from warpspeed.embedded.soak.chaos import Chaos, ChaosPlan, owed_kills
from warpspeed.embedded.soak.evidence import gather
from warpspeed.embedded.soak.fault_proxy import FaultProxy
from warpspeed.embedded.soak.producer import SoakLoad, SoakProducer, read_sent, sqs_sender
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import default_dags_folder
from warpspeed.storage.documents import join_uri

log = logging.getLogger(__name__)

S3_FAULTED = tuple(c for c in COMPONENTS if c != STACK)
"""Whose S3 requests the soak fails: the pipeline's (and the catalog server's), not its own seeding and audit."""
TRY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

SOAK_AIRFLOW_ENV = {
    # A task whose process was killed is failed (and retried) after 45 s without a heartbeat,
    # not the default 5 minutes; a dead scheduler's queued tasks are reset within 20 s.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
    # Messages held by a killed collect come back after a minute, not ten.
    "AIRFLOW__WARPSPEED__INTAKE_VISIBILITY_TIMEOUT": "60",
    # A task failed by a kill is retried after 10 s (then 20 s), not a minute: windows are a minute.
    "AIRFLOW__WARPSPEED__TASK_RETRY_DELAY_SECONDS": "10",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
}


@dataclass(frozen=True)
class SoakConfig:
    """One soak run.

    :param load: what the producer sends.
    :param chaos: what the chaos loop kills.
    :param fault_rate: share of the pipeline's SQS calls failed by the proxy.
    :param reply_lost_share: share of the faults of calls that change the queue (send, delete,
        change visibility, receive) that are "applied, reply lost" (forwarded, then the
        connection reset) rather than answered errors.
    :param s3_fault_rate: share of the pipeline's S3 requests (every component's but the soak's own)
        answered 503 SlowDown, reset or delayed by the counting proxy in front of the S3 server.
    :param min_windows: scoring windows (runs) that must have collected before the audit.
    :param drain_timeout: seconds to wait, after the producer stopped, for the pipeline to drain.
    :param spark_workloads: workloads whose batches always run on Spark (the warm local engine) in
        the soak's copy of the DAG bundle (``single_node_max_rows: 0``), so the chaos kills real
        Spark runs; the others are routed by size as shipped (their small batches run single-node).
    :param backend: where the windows score: ``local`` (the warm local engine) or ``emr`` (EMR steps on
        the production rehearsal; its S3 traffic signs with one identity, so ``s3_fault_rate`` does not
        reach it, while the ``s3`` server kill does).
    """

    load: SoakLoad = field(default_factory=SoakLoad)
    chaos: ChaosPlan = field(default_factory=ChaosPlan)
    fault_rate: float = 0.1
    reply_lost_share: float = 0.4
    s3_fault_rate: float = 0.02
    min_windows: int = 10
    drain_timeout: float = 1200.0
    window_minutes: int = 1
    spark_workloads: tuple[str, ...] = ("intent",)
    backend: str = "local"

    def __post_init__(self) -> None:
        check_backend(self.backend, "SoakConfig.backend")


def soak_dags_folder(home: Path, spark_workloads: tuple[str, ...], source: Path | None = None) -> Path:
    """Copy the DAG bundle under ``home``, sending ``spark_workloads``' batches to Spark; return the copy."""
    import yaml

    from warpspeed.config.yaml_file import read_mapping

    target = home / "soak" / "dags"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source or default_dags_folder(), target, ignore=shutil.ignore_patterns("__pycache__"))
    workloads_file = target / "config" / "workloads.yaml"
    doc = read_mapping(workloads_file, "workloads")
    for name in spark_workloads:
        if name not in doc["workloads"]:
            raise ValueError(f"soak spark_workloads names {name!r}, not a workload of {workloads_file}")
        doc["workloads"][name].setdefault("planning", {})["single_node_max_rows"] = 0
    workloads_file.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return target


def _queue_depth(sqs: LocalSqs) -> int:
    attrs = sqs.client().get_queue_attributes(
        QueueUrl=sqs.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _say(msg: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} soak: {msg}", flush=True)


def _drained(stack: LiveStack, since: datetime, records: WarpSpeedSettings) -> tuple[bool, str]:
    """Tell whether the pipeline is drained (and say how far it is).

    Drained: the queue is empty (in flight included), nothing is carried over, a run that
    started after ``since`` has finished and no active run is past waiting for its window.
    """
    assert stack.sqs is not None
    depth = _queue_depth(stack.sqs)
    runs = stack.dag_runs()
    active = {r["dag_run_id"] for r in runs if r["state"] in ("queued", "running")}
    busy = {t["dag_run_id"] for t in stack.task_instances()
            if t["dag_run_id"] in active and t["task_id"] != "wait_for_window" and t["state"] is not None}
    after = [r for r in runs if r["state"] in ("success", "failed") and r.get("start_date")
             and datetime.fromisoformat(r["start_date"].replace("Z", "+00:00")) > since]
    pending = _carried_over(records)
    status = f"queue {depth}, busy runs {len(busy)}, finished since stop {len(after)}, carried over {pending}"
    return depth == 0 and not busy and len(after) >= 1 and pending == 0, status


def _carried_over(settings: WarpSpeedSettings) -> int:
    """Return how many requests the latest window's plan carried over (storage on S3 or in a folder)."""
    storage = settings.storage()
    plans = sorted(u for u in storage.list(join_uri(settings.storage_prefix, "windows")) if u.endswith("/plan.json"))
    return len(json.loads(storage.read_text(plans[-1])).get("carried_over", [])) if plans else 0


def task_key_resolver(stack: LiveStack) -> Callable[[str], str]:
    """Return a function from a worker's title to the identity of the task it runs, across tries.

    A LocalExecutor worker's title names the task try's id; the REST API's task instances turn
    it into ``<run id>/<task id>/<map index>``.
    """

    def key(title: str) -> str:
        found = TRY_ID.search(title)
        if found is None:
            return title
        for ti in stack.task_instances():
            if ti.get("id") == found.group(0):
                return f"{ti['dag_run_id']}/{ti['task_id']}/{ti['map_index']}"
        return title

    return key


def busy_engine_pid(home: Path) -> int | None:
    """Return the warm Spark engine's pid while it runs at least one job, else None."""
    handle = read_handle(home)
    health = handle.healthy() if handle is not None else None
    return handle.pid if handle is not None and health and int(health.get("running", 0)) > 0 else None


def run_soak(home: Path, config: SoakConfig, **stack_kwargs: Any) -> SoakReport:
    """Run one soak in ``home`` (a fresh state folder) and return the audit."""
    record = home / "soak" / "sent.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    with FaultProxy(fault_rate=config.fault_rate, reply_lost_share=config.reply_lost_share) as proxy:

        def through_proxy(sqs: LocalSqs) -> str:
            proxy.upstream = sqs.endpoint_url
            return proxy.endpoint_url

        env = SOAK_AIRFLOW_ENV | stack_kwargs.pop("extra_env", {})
        if config.spark_workloads:
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(soak_dags_folder(home, config.spark_workloads))
        with soak_stack(config.backend, home, through_proxy, window_minutes=config.window_minutes, producer=None,
                        unpause=False, extra_env=env, tenants=config.load.tenants,
                        accounts=(config.load.accounts_base, config.load.accounts_spread),
                        **stack_kwargs) as (stack, records):
            assert stack.sqs is not None
            _say(f"Airflow up at {stack.base_url}; state in {home}; compute_backend = {config.backend}")
            stack.unpause(SCORING_DAG)
            producer = SoakProducer(sqs_sender(stack.sqs.client(), stack.sqs.queue_url), stack.tenants,
                                    config.load, record, config.window_minutes)
            chaos = Chaos(stack.components, stack.restart, config.chaos, task_key_resolver(stack),
                          engine_pid=lambda: busy_engine_pid(stack.home), servers=stack.servers,
                          pauses={"sqs": producer.lock}, ready={"api-server": stack.api_healthy})
            # on emr the pipeline reaches the S3 server directly, as the nodes' one identity: no proxy faults
            s3 = stack.s3.proxy if stack.s3 is not None and config.backend == "local" else None
            if s3 is not None:  # every component's requests but the soak's own (seeding, auditing)
                s3.set_faults(S3Faults(rate=config.s3_fault_rate, components=S3_FAULTED))
            producer.start()
            chaos.start()
            _say(f"producer: {config.load.requests} requests over {config.load.windows} windows; "
                 f"chaos: {config.chaos.kills} kills; SQS fault rate {config.fault_rate:.0%}; "
                 f"S3 fault rate {config.s3_fault_rate if s3 else 0:.0%}")
            while not producer.done.wait(15):
                _say(f"sent {len(producer.sent)}, kills {chaos.total}, SQS faults {proxy.injected}, "
                     f"S3 faults {sum(s3.injected.values()) if s3 else 0}")
            if producer.error is not None:
                raise RuntimeError(f"the soak producer failed: {producer.error!r}")
            stopped_at = datetime.now(UTC)
            _say(f"producer done: {len(producer.sent)} messages; draining")
            deadline = time.monotonic() + config.drain_timeout
            while True:
                try:
                    runs = stack.dag_runs()
                    done, status = _drained(stack, stopped_at, records)
                except Exception as err:  # a server or the api-server the chaos killed is not back yet
                    runs, done, status = [], False, f"cannot look ({type(err).__name__}: {err})"
                finished = [r for r in runs if r["state"] in ("success", "failed")]
                chaos_done = chaos.total >= config.chaos.kills or chaos.error is not None
                if done and chaos_done and len(finished) >= config.min_windows:
                    break
                if chaos_done and not chaos.stopped.is_set():
                    chaos.stopped.set()
                if time.monotonic() > deadline:
                    _say(f"drain timed out: {status}")
                    break
                _say(f"{status}; runs finished {len(finished)}; kills {chaos.total}")
                time.sleep(10)
            chaos.stopped.set()
            chaos.join(timeout=config.chaos.recover_timeout + 60)  # an outage under way ends first
            stack.api("PATCH", "/api/v2/dags/warpspeed_scoring", {"is_paused": True})
            if s3 is not None:
                s3.set_faults(S3Faults())
            for line in chaos.log:
                _say(f"chaos {line}")
            evidence = gather(
                sent=read_sent(record), storage_prefix=records.storage_prefix, catalog=records.catalog.load(),
                storage=records.storage(),
                sqs_client=stack.sqs.client(), queue_url=stack.sqs.queue_url, dlq_url=stack.sqs.dead_letter_queue_url,
                run_states={r["dag_run_id"]: r["state"] for r in stack.dag_runs()}, kills=chaos.total,
                faults=proxy.injected,
            )
        report = audit(evidence)
        report.figures["kills_by_kind"] = dict(sorted(chaos.kills.items()))
        report.figures["recovered_s"] = dict(sorted(chaos.recovered.items()))
        report.figures["sqs_calls"] = proxy.calls
        report.figures["sqs_faults_by_kind"] = proxy.by_kind()
        if s3 is not None:
            report.figures["s3_requests"] = s3.requests
            report.figures["s3_faults"] = sum(s3.injected.values())
            report.figures["s3_faults_by_kind"] = dict(sorted(s3.injected.items()))
        return report


def config_from_env(env: dict[str, str] | None = None) -> SoakConfig:
    """Build the ``make soak`` config from ``SOAK_*`` variables (defaults: the issue's acceptance)."""
    env = dict(os.environ if env is None else env)
    windows = int(env.get("SOAK_WINDOWS", "10"))
    kills = int(env.get("SOAK_KILLS", "12"))
    backend = check_backend(env.get("SOAK_BACKEND", "local"))
    return SoakConfig(
        load=SoakLoad(requests=int(env.get("SOAK_REQUESTS", "5000")), windows=windows),
        # at least one kill of the warm engine while it runs a Spark batch (the Spark lane; not on emr),
        # and of each server and the api-server and dag-processor (as many of them as the kills allow)
        chaos=ChaosPlan(kills=kills, min_gap=25, max_gap=max(30, windows * 60 * 0.8 / max(kills, 1)),
                        weights=weights(backend), at_least=owed_kills(kills, must_kill(backend)) or None),
        fault_rate=float(env.get("SOAK_FAULT_RATE", "0.1")),
        s3_fault_rate=float(env.get("SOAK_S3_FAULT_RATE", "0.02")),
        min_windows=windows,
        backend=backend,
    )


def main() -> int:
    """Run ``make soak``; print ``SOAK {json}``; exit 1 on any loss, double score or silent DLQ entry."""
    from warpspeed.config.settings import default_home

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    def terminate(signum: int, frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    home = Path(os.environ.get("WARPSPEED_HOME") or default_home()) / "soak"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    report = run_soak(home, config_from_env())
    for kind, lines in report.examples.items():
        for line in lines:
            print(f"  {kind}: {line}")
    print("SOAK " + json.dumps(report.figures, sort_keys=True), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
