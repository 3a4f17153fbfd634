"""The step runner: what EMR's primary node and Glue's workers do, on a Spark standalone cluster on loopback.

``python -m warpspeed.embedded.rehearsal.step_runner --home H --control-plane URL --s3 URL`` starts
the standalone master and workers, then polls the control plane (boto3, as any EMR client) and
writes states back through its admin API (:mod:`~warpspeed.embedded.rehearsal.control_plane`):

* a STARTING cluster gets its SPARK_CONF_DIR from its ``Configurations``
  (:mod:`~warpspeed.embedded.rehearsal.spark_conf`), goes BOOTSTRAPPING while its bootstrap actions
  really run (:mod:`~warpspeed.embedded.rehearsal.bootstrap`), then WAITING, or
  TERMINATED_WITH_ERRORS (BOOTSTRAP_FAILURE) when one fails;
* PENDING steps start oldest first, up to the cluster's ``StepConcurrencyLevel`` and the machine's
  ``--max-steps``, as ``command-runner.jar`` runs them: ``Args`` verbatim on the node's ``PATH``
  (:mod:`~warpspeed.embedded.rehearsal.command_runner`); exit 0 is COMPLETED, anything else FAILED
  with ``FailureDetails`` (the root cause of the output, its log under ``<LogUri>/<cluster>/steps/<step>/``);
* CANCEL_PENDING steps and TERMINATING clusters are stopped; ``ActionOnFailure`` is applied;
* a cluster with no step for its ``AutoTerminationPolicy.IdleTimeout`` (or ``--idle-seconds``, the
  rehearsal's shorter one) is terminated, as EMR's auto-termination does;
* Glue job runs become ``spark-submit`` (:mod:`~warpspeed.embedded.rehearsal.glue_runs`);
* Spot rules reclaim executors (:mod:`~warpspeed.embedded.rehearsal.chaos`).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.embedded.rehearsal import command_runner as node
from warpspeed.embedded.rehearsal.bootstrap import BootstrapRun
from warpspeed.embedded.rehearsal.chaos import Reclaim, SpotRule, reclaim_round, spot_message
from warpspeed.embedded.rehearsal.glue_runs import glue_command, glue_configurations
from warpspeed.embedded.rehearsal.processes import reap_registered, spawn, stop_group
from warpspeed.embedded.rehearsal.spark_conf import Node, conf_dir_for
from warpspeed.embedded.rehearsal.spark_standalone import LOG4J2, StandaloneCluster, spark_env

log = logging.getLogger(__name__)

ACTIVE = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]
STOP_ACTIONS = ("CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW")


@dataclass
class Running:
    """A step (or Glue run) the runner started: its process, folder and what ended it."""

    kind: str
    key: tuple[str, str]
    name: str
    args: list[str]
    proc: subprocess.Popen[bytes]
    folder: Path
    started: float = field(default_factory=time.monotonic)
    log_prefix: str | None = None
    stopped_as: str | None = None
    reclaim: Reclaim | None = None


@dataclass
class ClusterState:
    """What the runner keeps of a cluster: its description, conf dir, bootstrap and idleness."""

    description: dict[str, Any]
    conf_dir: Path
    idle_timeout: float | None
    bootstrap: BootstrapRun | None = None
    idle_since: float = field(default_factory=time.monotonic)


class StepRunner:
    """Run the control plane's clusters, steps and Glue runs on one standalone Spark cluster."""

    def __init__(self, *, home: Path, control_plane: str, identity: node.NodeIdentity, spark: StandaloneCluster,
                 node_conf: Node, python_home: Path, idle_seconds: float | None = None, max_steps: int = 3) -> None:
        import boto3

        self.home, self.cp, self.identity, self.spark, self.node = home, control_plane, identity, spark, node_conf
        self.idle_seconds, self.max_steps = idle_seconds, max_steps
        self.registry = home / "processes"
        self.env = node.node_env(identity, bin_dir=node.install_commands(home / "bin"), python_home=python_home)
        self.lock = python_home.parent / f".{python_home.name}.lock"
        python_home.mkdir(parents=True, exist_ok=True)
        session = boto3.Session(aws_access_key_id=identity.access_key, aws_secret_access_key=identity.secret_key,
                                region_name=identity.region)
        self.emr: Any = session.client("emr", endpoint_url=control_plane)
        self.glue: Any = session.client("glue", endpoint_url=control_plane)
        self.s3: Any = session.client("s3", endpoint_url=identity.s3_endpoint)
        self.clusters: dict[str, ClusterState] = {}
        self.running: dict[tuple[str, str], Running] = {}
        self.rules: list[SpotRule] = []

    def admin(self, path: str, **body: Any) -> dict[str, Any]:
        """POST to the control plane's admin API."""
        request = urllib.request.Request(f"{self.cp}/_rehearsal/{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def _pages(self, call: Any, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = call(**kwargs)
            out += page.get(key, [])
            if not page.get("Marker"):
                return out
            kwargs["Marker"] = page["Marker"]

    def tick(self) -> None:
        """Look at every active cluster and Glue run once; reap what ended; reclaim Spot nodes."""
        orders = self.admin("runner/take")
        self.rules += [SpotRule.from_dict(r) for r in orders["spot"]]
        if orders["idle_seconds"] is not None:  # a new idle timeout for every cluster, counted from now
            self.idle_seconds = float(orders["idle_seconds"])
            for known in self.clusters.values():
                known.idle_timeout, known.idle_since = self.idle_seconds, time.monotonic()
        for cluster in self._pages(self.emr.list_clusters, "Clusters", ClusterStates=ACTIVE):
            self._cluster(cluster["Id"], cluster["Status"]["State"])
        self._glue()
        self._reap()
        self._spot()

    # -- clusters ---------------------------------------------------------------------------
    def _cluster(self, cid: str, state: str) -> None:
        if state == "STARTING" or cid not in self.clusters:
            self._adopt(cid, state)
            return
        known = self.clusters[cid]
        if state == "TERMINATING":
            self._terminate(cid, "TERMINATED")
        elif state == "BOOTSTRAPPING" and known.bootstrap is not None:
            self._bootstrap(cid, known, known.bootstrap)
        elif state in ("WAITING", "RUNNING"):
            self._steps(cid, state, known)

    def _adopt(self, cid: str, state: str) -> None:
        description = self.emr.describe_cluster(ClusterId=cid)["Cluster"]
        policy = self.emr.get_auto_termination_policy(ClusterId=cid).get("AutoTerminationPolicy") or {}
        idle = self.idle_seconds if self.idle_seconds is not None else policy.get("IdleTimeout")
        folder = self.home / "clusters" / cid
        conf_dir = folder / "spark-conf"
        conf_dir_for(description.get("Configurations") or [], self.node, conf_dir, LOG4J2)
        known = ClusterState(description, conf_dir, float(idle) if idle else None)
        self.clusters[cid] = known
        if state != "STARTING":  # a runner restarted: what it ran before is gone
            for step in self._pages(self.emr.list_steps, "Steps", ClusterId=cid, StepStates=["RUNNING"]):
                self._fail(cid, step["Id"], "the rehearsal's step runner restarted while the step ran", None)
            return
        actions = self._pages(self.emr.list_bootstrap_actions, "BootstrapActions", ClusterId=cid)
        known.bootstrap = BootstrapRun(cid, actions, folder / "bootstrap-actions", description.get("LogUri"))
        self.admin("emr/cluster", cluster_id=cid, state="BOOTSTRAPPING", message="Running bootstrap actions")
        self._bootstrap(cid, known, known.bootstrap)

    def _bootstrap(self, cid: str, known: ClusterState, run: BootstrapRun) -> None:
        if run.proc is None and run.number == 0 and not run.start_next(self.s3, self.env, self.lock, self.registry):
            return self._ready(cid, known)
        finished, failure = run.poll(self.s3)
        if not finished:
            return None
        if failure is not None:
            log.warning("%s: bootstrap action %d (%s) failed", cid, failure.number, failure.name)
            self.admin("emr/cluster", cluster_id=cid, state="TERMINATED_WITH_ERRORS", code="BOOTSTRAP_FAILURE",
                       message=failure.message)
            return None
        if not run.start_next(self.s3, self.env, self.lock, self.registry):
            self._ready(cid, known)
        return None

    def _ready(self, cid: str, known: ClusterState) -> None:
        known.idle_since = time.monotonic()
        self.admin("emr/cluster", cluster_id=cid, state="WAITING", message="Cluster ready to run steps.")

    def _terminate(self, cid: str, state: str, code: str | None = None, message: str | None = None) -> None:
        known = self.clusters.get(cid)
        if known is not None and known.bootstrap is not None:
            known.bootstrap.stop()
        for run in [r for r in self.running.values() if r.kind == "step" and r.key[0] == cid]:
            self._stop(run, "CANCELLED")
        self._reap()
        extra = {"code": code, "message": message} if code else {}
        self.admin("emr/cluster", cluster_id=cid, state=state, **extra)

    def _steps(self, cid: str, state: str, known: ClusterState) -> None:
        steps = self._pages(self.emr.list_steps, "Steps", ClusterId=cid,
                            StepStates=["PENDING", "RUNNING", "CANCEL_PENDING"])
        for step in steps:
            if step["Status"]["State"] == "CANCEL_PENDING":
                run = self.running.get((cid, step["Id"]))
                if run is not None:
                    self._stop(run, "CANCELLED")
                else:
                    self.admin("emr/step", cluster_id=cid, step_id=step["Id"], state="CANCELLED")
        limit = int(known.description.get("StepConcurrencyLevel") or 1)
        busy = sum(1 for k in self.running if k[0] == cid)
        for step in reversed(steps):  # ListSteps is newest first; EMR starts the oldest first
            if busy >= limit or len(self.running) >= self.max_steps:
                break
            if step["Status"]["State"] == "PENDING" and (cid, step["Id"]) not in self.running:
                self._start_step(cid, known, step)
                busy += 1
        if busy or any(s["Status"]["State"] != "CANCEL_PENDING" for s in steps):
            known.idle_since = time.monotonic()
        elif known.idle_timeout is not None and time.monotonic() - known.idle_since >= known.idle_timeout:
            log.info("%s: idle for %.0f s, auto-terminating", cid, known.idle_timeout)
            self._terminate(cid, "TERMINATED", "ALL_STEPS_COMPLETED",
                            f"Cluster was idle for {known.idle_timeout:.0f} seconds (auto-termination policy)")
            return
        want = "RUNNING" if busy else "WAITING"
        if want != state:
            self.admin("emr/cluster", cluster_id=cid, state=want,
                       message="Running step" if busy else "Cluster ready after last step completed.")

    # -- steps ------------------------------------------------------------------------------
    def _start_step(self, cid: str, known: ClusterState, step: Mapping[str, Any]) -> None:
        sid, config = step["Id"], step["Config"]
        args = [str(a) for a in config.get("Args") or []]
        folder = self.home / "clusters" / cid / "steps" / sid
        node.write_controller(folder, str(config.get("Jar")), args)
        self.admin("emr/step", cluster_id=cid, step_id=sid, state="RUNNING")
        log_uri = (known.description.get("LogUri") or "").replace("s3n://", "s3://").rstrip("/")
        prefix = f"{log_uri}/{cid}/steps/{sid}" if log_uri else None
        if config.get("Jar") != "command-runner.jar" or not args:
            (folder / "stderr").write_text(f"the rehearsal runs command-runner.jar steps, not {config.get('Jar')}\n")
            self._fail(cid, sid, node.root_cause(node.read_output(folder)), node.upload_logs(self.s3, folder, prefix))
            return
        env = spark_env(self.env, known.conf_dir, WARPSPEED_STEP_DIR=str(folder))
        try:
            proc = spawn(args, env=env, log=folder / "stdout", stderr=folder / "stderr", registry=self.registry,
                         cwd=folder)
        except OSError as err:  # command-runner cannot run Args[0]
            (folder / "stderr").write_text(f"Cannot run program \"{args[0]}\": {err}\n")
            self._fail(cid, sid, node.root_cause(node.read_output(folder)), node.upload_logs(self.s3, folder, prefix))
            return
        rule = next((r for r in self.rules if r.matches(str(step.get("Name")), args)), None)
        if rule is not None:
            self.rules.remove(rule)
        self.running[(cid, sid)] = Running("step", (cid, sid), str(step.get("Name")), args, proc, folder,
                                           log_prefix=prefix, reclaim=Reclaim(rule) if rule else None)
        log.info("%s %s (%s) started: %s", cid, sid, step.get("Name"), " ".join(args)[:300])

    def _stop(self, run: Running, state: str) -> None:
        if run.proc.poll() is None:
            run.stopped_as = state
            stop_group(run.proc, timeout=20)  # spark-submit's shutdown hook stops the SparkContext

    def _fail(self, cid: str, sid: str, message: str, log_file: str | None) -> None:
        self.admin("emr/step", cluster_id=cid, step_id=sid, state="FAILED",
                   failure={"Reason": "Unknown Error", "Message": message, "LogFile": log_file})

    def _reap(self) -> None:
        for key, run in list(self.running.items()):
            code = run.proc.poll()
            if code is None or key not in self.running:  # running, or reaped by a nested terminate
                continue
            del self.running[key]
            seconds = round(time.monotonic() - run.started, 1)
            kills = run.reclaim.kills if run.reclaim else []
            (run.folder / "result.json").write_text(json.dumps({"rc": code, "seconds": seconds, "spot_kills": kills}))
            if run.kind == "glue":
                self._glue_ended(key, run, code)
                continue
            log_file = node.upload_logs(self.s3, run.folder, run.log_prefix)
            # lost to Spot: stopped for it, or failed by Spark itself once its executors were reclaimed (under
            # load Spark can give up before the reclaim is over): EMR fails both with the Spot message
            if run.reclaim is not None and (run.stopped_as == "SPOT" or (not run.stopped_as and code != 0 and kills)):
                self._fail(key[0], key[1], spot_message(run.reclaim, node.read_output(run.folder)), log_file)
            elif run.stopped_as:
                self.admin("emr/step", cluster_id=key[0], step_id=key[1], state=run.stopped_as)
            elif code == 0:
                self.admin("emr/step", cluster_id=key[0], step_id=key[1], state="COMPLETED")
            else:
                self._fail(key[0], key[1], node.root_cause(node.read_output(run.folder)), log_file)
                self._on_failure(key[0], key[1])
            log.info("%s %s ended rc=%s after %.1f s", key[0], key[1], code, seconds)

    def _on_failure(self, cid: str, sid: str) -> None:
        steps = self._pages(self.emr.list_steps, "Steps", ClusterId=cid)
        action = next((s.get("ActionOnFailure") for s in steps if s["Id"] == sid), "CONTINUE")
        if action not in STOP_ACTIONS:
            return
        for step in (s for s in steps if s["Status"]["State"] == "PENDING"):
            self.admin("emr/step", cluster_id=cid, step_id=step["Id"], state="CANCELLED")
        if action != "CANCEL_AND_WAIT":
            self._terminate(cid, "TERMINATED_WITH_ERRORS", "STEP_FAILURE", "Shut down as step failed")

    def _spot(self) -> None:
        for run in list(self.running.values()):
            if run.reclaim is None or run.proc.poll() is not None:
                continue
            reclaim_round(self.spark, run.reclaim, node.read_output(run.folder), time.monotonic() - run.started)
            if run.reclaim.over:  # Spark has not given up yet: the step does not outlive its capacity
                self._stop(run, "SPOT")

    # -- Glue -------------------------------------------------------------------------------
    def _glue(self) -> None:
        for run in self.admin("glue/pending-runs")["runs"]:
            key, started = (run["job_name"], run["run_id"]), self.running.get((run["job_name"], run["run_id"]))
            if run["state"] == "STOPPING":
                if started is not None:
                    self._stop(started, "STOPPED")
                else:
                    self.admin("glue/job-run", job_name=key[0], run_id=key[1], state="STOPPED")
            elif run["state"] == "STARTING" and started is None and len(self.running) < self.max_steps:
                self._start_glue(run)

    def _start_glue(self, run: Mapping[str, Any]) -> None:
        key = (run["job_name"], run["run_id"])
        folder = self.home / "glue" / key[0] / key[1]
        cmd = glue_command(run)
        node.write_controller(folder, "glue", cmd)
        conf_dir = folder / "spark-conf"
        conf_dir_for(glue_configurations(run), self.node, conf_dir, LOG4J2)
        self.admin("glue/job-run", job_name=key[0], run_id=key[1], state="RUNNING")
        env = spark_env(self.env, conf_dir, WARPSPEED_STEP_DIR=str(folder))
        proc = spawn(cmd, env=env, log=folder / "stdout", stderr=folder / "stderr", registry=self.registry, cwd=folder)
        self.running[key] = Running("glue", key, key[0], cmd, proc, folder)

    def _glue_ended(self, key: tuple[str, str], run: Running, code: int) -> None:
        state = run.stopped_as or ("SUCCEEDED" if code == 0 else "FAILED")
        message = node.root_cause(node.read_output(run.folder)) if state == "FAILED" else None
        self.admin("glue/job-run", job_name=key[0], run_id=key[1], state=state, error_message=message)

    def stop(self) -> None:
        """Stop every step and Glue run this runner started."""
        for run in list(self.running.values()):
            self._stop(run, "CANCELLED" if run.kind == "step" else "STOPPED")
        self._reap()
        for known in self.clusters.values():
            if known.bootstrap is not None:
                known.bootstrap.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the step runner until SIGTERM (the rehearsal stack starts it; see :mod:`.stack`)."""
    from warpspeed.embedded.rehearsal.runner_config import RunnerConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the runner's JSON config (RunnerConfig)")
    config = RunnerConfig.read(parser.parse_args(argv).config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    reaped = reap_registered(config.home / "processes")
    if reaped:
        log.warning("killed process groups %s left by an earlier runner", reaped)
    spark = StandaloneCluster(config.home / "spark", config.home / "processes", workers=config.workers)
    runner: StepRunner | None = None
    try:
        base = node.node_env(config.identity, bin_dir=config.home / "bin", python_home=config.python_home)
        timings = spark.start(base)
        log.info("Spark standalone master %s with %d workers up (%s)", spark.master_url, config.workers, timings)
        runner = StepRunner(home=config.home, control_plane=config.identity.control_plane, identity=config.identity,
                            spark=spark, node_conf=config.node(spark.master_url), python_home=config.python_home,
                            idle_seconds=config.idle_seconds, max_steps=config.max_steps)
        (config.home / "ready").write_text(json.dumps({"master": spark.master_url, "timings": timings}))
        while not stopping:
            try:
                runner.tick()
            except Exception:  # the rehearsal keeps running; the log says what broke
                log.exception("tick failed")
            time.sleep(config.poll_seconds)
    finally:
        if runner is not None:
            runner.stop()
        spark.stop()
        reap_registered(config.home / "processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
