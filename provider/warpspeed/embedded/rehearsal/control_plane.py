"""The rehearsal's EMR and Glue control planes: moto as a passive store, on loopback, in a process of its own.

``python -m warpspeed.embedded.rehearsal.control_plane --endpoint-file F`` serves moto's EMR and
Glue APIs (and its S3, unused: S3 is a real S3 server) on a free 127.0.0.1 port and writes the
endpoint to ``F``. Airflow reaches it through the AWS connection's ``endpoint_url``; the step runner
(:mod:`warpspeed.embedded.rehearsal.step_runner`) reads it with boto3 and changes states through
``POST /_rehearsal/<path>`` (JSON), answered by :class:`AdminMiddleware` in front of moto.

Emulated, and named so in docs/emr.md. moto 5.2.5 alone would lie about what runs: it marks the
first step of a cluster RUNNING (and never ends it), a cluster WAITING inside RunJobFlow, every Glue
run SUCCEEDED on the first read; it has no CancelSteps, BatchStopJobRun, FailureDetails,
StateChangeReason codes or auto-termination policy. :func:`patch_moto` makes it a store whose
states only the runner changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ADMIN_PREFIX = "/_rehearsal/"
LOCK = threading.RLock()
ENDED_STEP_STATES = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")
ENDED_RUN_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR")
ORDERS: dict[str, Any] = {"spot": [], "idle_seconds": None}
"""What was asked of the runner until it takes it: Spot interruptions (``POST /_rehearsal/spot``) and a
new idle timeout for every cluster (``POST /_rehearsal/idle``)."""


def patch_moto() -> None:
    """Make moto's EMR and Glue models passive: only the admin API moves steps, clusters and runs."""
    from moto.core.responses import ActionResult
    from moto.emr import models as emr_models
    from moto.emr import responses as emr_responses
    from moto.glue import models as glue_models
    from moto.glue import responses as glue_responses
    from moto.moto_api import state_manager

    # moto's classes, typed loosely: this function replaces their methods
    Cluster: Any = emr_models.Cluster
    Step: Any = emr_models.Step
    ElasticMapReduceResponse: Any = emr_responses.ElasticMapReduceResponse
    FakeJobRun: Any = glue_models.FakeJobRun
    GlueResponse: Any = glue_responses.GlueResponse

    def add_steps(self: Any, steps: list[dict[str, Any]]) -> list[Any]:
        added = [Step(state="PENDING", **s) for s in steps]
        self.steps.extend(added)
        return added

    def run_bootstrap_actions(self: Any) -> None:
        self.state = "STARTING"  # the runner bootstraps it, then sets WAITING

    def terminate(self: Any) -> None:
        self.state = "TERMINATING"  # the runner stops what runs, then sets TERMINATED
        self.last_state_change_reason = "Terminated by user request"
        self.state_change_code = "USER_REQUEST"
        for step in self.steps:
            if step.state == "PENDING":
                set_step(step, "CANCELLED")

    step_status, cluster_status = Step.status.fget, Cluster.status.fget

    def step_status_with_failure(self: Any) -> dict[str, Any]:
        out = step_status(self)
        if getattr(self, "failure_details", None):
            out["FailureDetails"] = self.failure_details
        return out

    def cluster_status_with_code(self: Any) -> dict[str, Any]:
        out = cluster_status(self)
        if getattr(self, "state_change_code", None):
            out["StateChangeReason"]["Code"] = self.state_change_code
        return out

    Cluster.add_steps, Cluster.run_bootstrap_actions, Cluster.terminate = add_steps, run_bootstrap_actions, terminate
    Step.status = property(step_status_with_failure)
    Cluster.status = property(cluster_status_with_code)
    run_job_flow = ElasticMapReduceResponse.run_job_flow

    def run_job_flow_keeping_policy(self: Any) -> Any:
        result = run_job_flow(self)
        cluster = self.backend.clusters[result.result["JobFlowId"]]
        cluster.auto_termination_policy = self._get_param("AutoTerminationPolicy")
        return result

    def get_auto_termination_policy(self: Any) -> Any:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))
        policy = getattr(cluster, "auto_termination_policy", None)
        return ActionResult({"AutoTerminationPolicy": policy} if policy else {})

    def cancel_steps(self: Any) -> Any:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))
        wanted, info = self._get_param("StepIds", []), []
        with LOCK:
            for step in (s for s in cluster.steps if s.id in wanted):
                if step.state in ("PENDING", "RUNNING"):
                    set_step(step, "CANCELLED" if step.state == "PENDING" else "CANCEL_PENDING")
                    info.append({"StepId": step.id, "Status": "SUBMITTED"})
                else:
                    info.append({"StepId": step.id, "Status": "FAILED", "Reason": f"step is {step.state}"})
        return ActionResult({"CancelStepsInfoList": info})

    ElasticMapReduceResponse.run_job_flow = run_job_flow_keeping_policy
    ElasticMapReduceResponse.get_auto_termination_policy = get_auto_termination_policy
    ElasticMapReduceResponse.cancel_steps = cancel_steps
    # Glue runs stay STARTING until the runner moves them (so ConcurrentRunsExceeded sees real runs).
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": sys.maxsize})
    as_dict = FakeJobRun.as_dict

    def run_as_dict(self: Any) -> dict[str, Any]:
        out = as_dict(self)
        out["CompletedOn"] = getattr(self, "ended_on", None)
        out["ExecutionTime"] = int(getattr(self, "execution_time", 0))
        out["ErrorMessage"] = getattr(self, "error_message", None)
        return {k: v for k, v in out.items() if v is not None}

    def batch_stop_job_run(self: Any) -> Any:
        name = self._get_param("JobName")
        job, ok, errors = self.glue_backend.get_job(name), [], []
        with LOCK:
            for run_id in self._get_param("JobRunIds", []):
                run = next((r for r in job.job_runs if r.job_run_id == run_id), None)
                if run is None or run._status not in ("STARTING", "RUNNING"):
                    errors.append({"JobName": name, "JobRunId": run_id, "ErrorDetail": {
                        "ErrorCode": "InvalidInputException", "ErrorMessage": f"run is {run and run._status}"}})
                    continue
                run.status = "STOPPING"  # the runner stops the application, then sets STOPPED
                ok.append({"JobName": name, "JobRunId": run_id})
        return ActionResult({"SuccessfulSubmissions": ok, "Errors": errors})

    FakeJobRun.as_dict = run_as_dict
    GlueResponse.batch_stop_job_run = batch_stop_job_run


def set_step(step: Any, state: str, details: dict[str, Any] | None = None, reason: str | None = None) -> None:
    """Move a moto step to ``state`` with its timestamps (and FailureDetails / reason when given)."""
    from moto.core.utils import utcnow

    if state == "RUNNING" and step.start_date_time is None:
        step.start_date_time = utcnow()
    if state in ENDED_STEP_STATES:
        step.end_date_time = utcnow()
    # the details before the state: moto's server answers DescribeStep and ListSteps from other threads, and no
    # reader should see FAILED without its FailureDetails (a Spot loss is told by them)
    if reason is not None:
        step.last_state_change_reason = reason
    if details is not None:
        step.failure_details = {k: v for k, v in details.items() if v is not None}
    step.state = state


def _backends(service: str) -> list[Any]:
    from moto.emr.models import emr_backends
    from moto.glue.models import glue_backends

    found = emr_backends if service == "emr" else glue_backends
    return [backend for regions in found.values() for backend in regions.values()]


def _cluster(cluster_id: str) -> Any:
    for backend in _backends("emr"):
        if cluster_id in backend.clusters:
            return backend.clusters[cluster_id]
    raise KeyError(cluster_id)


def _job_run(job_name: str, run_id: str) -> Any:
    for backend in _backends("glue"):
        job = backend.jobs.get(job_name)
        for run in job.job_runs if job else ():
            if run.job_run_id == run_id:
                return run
    raise KeyError(f"{job_name}/{run_id}")


def _set_cluster(body: dict[str, Any]) -> dict[str, Any]:
    from moto.core.utils import utcnow

    cluster = _cluster(body["cluster_id"])
    cluster.state = body["state"]
    if cluster.state in ("WAITING", "RUNNING") and cluster.ready_datetime is None:
        cluster.ready_datetime = utcnow()
    if cluster.state.startswith("TERMINATED"):
        cluster.end_datetime = utcnow()
        for step in cluster.steps:  # what had not run by now never will
            if step.state in ("PENDING", "RUNNING", "CANCEL_PENDING"):
                set_step(step, "CANCELLED", reason=body.get("message"))
    if "code" in body:
        cluster.state_change_code = body["code"]
    if "message" in body:
        cluster.last_state_change_reason = body["message"]
    return {"cluster_id": cluster.id, "state": cluster.state}


def _set_run(body: dict[str, Any]) -> dict[str, Any]:
    from moto.core.utils import utcnow

    run = _job_run(body["job_name"], body["run_id"])
    run.status = body["state"]
    run.modified_on = utcnow()
    if body["state"] in ENDED_RUN_STATES:
        run.ended_on = utcnow()
        run.execution_time = (run.ended_on - run.started_on).total_seconds()
    if body.get("error_message"):
        run.error_message = body["error_message"]
    return {"run_id": run.job_run_id, "state": run.status}


def _pending_runs() -> dict[str, Any]:
    runs = [
        {"job_name": job.name, "run_id": run.job_run_id, "state": run._status, "arguments": run.arguments or {},
         "command": job.command}
        for backend in _backends("glue") for job in backend.jobs.values() for run in job.job_runs
        if run._status in ("STARTING", "RUNNING", "STOPPING")
    ]
    return {"runs": runs}


def _set_step_of(body: dict[str, Any]) -> dict[str, Any]:
    step = next(s for s in _cluster(body["cluster_id"]).steps if s.id == body["step_id"])
    set_step(step, body["state"], body.get("failure"), body.get("reason"))
    return {"step_id": step.id, "state": step.state}


def _spot(body: dict[str, Any]) -> dict[str, Any]:
    ORDERS["spot"].append(dict(body))
    return {"rules": len(ORDERS["spot"])}


def _idle(body: dict[str, Any]) -> dict[str, Any]:
    ORDERS["idle_seconds"] = float(body["seconds"])
    return {"idle_seconds": ORDERS["idle_seconds"]}


def _take(body: dict[str, Any]) -> dict[str, Any]:
    taken = {"spot": list(ORDERS["spot"]), "idle_seconds": ORDERS["idle_seconds"]}
    ORDERS.update(spot=[], idle_seconds=None)
    return taken


ROUTES = {
    "emr/step": _set_step_of, "emr/cluster": _set_cluster, "glue/job-run": _set_run,
    "glue/pending-runs": lambda _body: _pending_runs(), "spot": _spot, "idle": _idle, "runner/take": _take,
}
"""The admin API: the runner's writes and reads, and the orders it takes (Spot rules, idle timeout)."""


def admin(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Answer one admin request (:data:`ROUTES`); raise KeyError for an unknown path."""
    with LOCK:
        return ROUTES[path](body)


class AdminMiddleware:
    """Answer ``POST /_rehearsal/<path>`` (JSON) and pass every other request to moto."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Serve one WSGI request."""
        path = environ.get("PATH_INFO", "")
        if not path.startswith(ADMIN_PREFIX):
            return self.app(environ, start_response)
        try:
            body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
            out, status = admin(path[len(ADMIN_PREFIX):], body), "200 OK"
        except (KeyError, StopIteration) as err:
            out, status = {"error": f"not found: {err}"}, "404 Not Found"
        payload = json.dumps(out, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def serve(port: int = 0) -> Any:
    """Return moto's server (patched, with the admin routes) bound to ``127.0.0.1:port`` (0: a free one)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    patch_moto()
    app = AdminMiddleware(DomainDispatcherApplication(create_backend_app))
    return make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM; publish the endpoint through ``--endpoint-file`` (written atomically)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpoint-file", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = serve(args.port)
    tmp = args.endpoint_file.with_suffix(".tmp")
    tmp.write_text(f"http://127.0.0.1:{server.server_address[1]}")
    tmp.replace(args.endpoint_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
