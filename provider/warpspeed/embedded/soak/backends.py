"""Where the soak's windows score: the local backend (``SOAK_BACKEND=local``) or the rehearsal (``emr``).

``local`` is the live stack as ``make airflow`` runs it: the warm local Spark engine scores, the
pipeline's documents and tables are in the state folder's bucket and REST catalog. ``emr`` is the
live stack on the production rehearsal (:func:`warpspeed.embedded.rehearsal.live.live_rehearsal`,
docs/emr.md): every batch is an EMR step on the rehearsal's clusters (created from the bundle's
``cluster_profiles.yaml``, reused across windows), documents on the same S3 server, tables in the
Glue catalog of the rehearsal's control plane. What the chaos can kill differs (:func:`must_kill`,
:func:`weights`): there is no warm engine on the EMR path and no Spark under the task processes
(the steps run on the "nodes", and the score tasks wait deferred), while an S3 outage now also
hits the steps' code, logs and Iceberg data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from warpspeed.config.s3 import STACK
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.live import LiveStack
from warpspeed.embedded.rehearsal.data import rehearsal_settings
from warpspeed.embedded.rehearsal.live import live_rehearsal
from warpspeed.embedded.soak.chaos import DEFAULT_WEIGHTS, MUST_KILL
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import AWS_CONN_ID
from warpspeed.exceptions import WarpSpeedConfigError

BACKENDS = ("local", "emr")
EMR_MUST_KILL = ("s3", "postgres", "sqs", "api-server", "dag-processor", "catalog")
"""What an ``emr`` soak kills at least once, in the order a plan of fewer kills keeps them: the S3
server first (the EMR path's code, logs, leases and tables), the REST catalog last (the EMR path
reads the Glue catalog; only the live stack's own bucket uses it)."""
NO_WARM_ENGINE = ("engine", "compute")
"""Chaos actions with nothing to hit on the EMR path (no warm engine, nothing Spark under a task)."""


def check_backend(backend: str, source: str = "SOAK_BACKEND") -> str:
    """Return ``backend`` if the soak knows it, else say what ``source`` may be."""
    if backend not in BACKENDS:
        raise WarpSpeedConfigError(f"{source}={backend!r}: the soak runs on {' or '.join(BACKENDS)} "
                                   "(emr: the production rehearsal, docs/emr.md)")
    return backend


def must_kill(backend: str) -> tuple[str, ...]:
    """Return the chaos actions a soak on ``backend`` owes one kill each (as many as its kills allow)."""
    return EMR_MUST_KILL if check_backend(backend) == "emr" else MUST_KILL


def weights(backend: str) -> dict[str, float] | None:
    """Return the chaos's action weights on ``backend`` (None: the defaults)."""
    if check_backend(backend) != "emr":
        return None
    return {a: 0.0 if a in NO_WARM_ENGINE else w for a, w in DEFAULT_WEIGHTS.items()}


@contextmanager
def soak_stack(backend: str, home: Path, sqs_endpoint: Callable[[LocalSqs], str],
               **live: Any) -> Iterator[tuple[LiveStack, WarpSpeedSettings]]:
    """Run the live stack for a soak on ``backend``; yield it and the settings of the pipeline's records.

    :param sqs_endpoint: given the SQS server, returns the URL the Airflow components reach it at
        (the soak's fault proxy).
    :param live: :class:`LiveStack`'s other arguments.
    """
    if check_backend(backend) == "emr":
        jars = WarpSpeedSettings.from_mapping({"home": str(home)}).jars_dir
        with live_rehearsal(home, jars, sqs_endpoint=sqs_endpoint, **live) as (stack, rehearsal):
            yield stack, rehearsal_settings(rehearsal)
        return

    def through_proxy(sqs: LocalSqs) -> dict[str, str]:
        conn = json.loads(sqs.airflow_connection())
        conn["extra"]["endpoint_url"] = sqs_endpoint(sqs)
        return {f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(conn)}

    with LiveStack(home, sqs_env=through_proxy, **live) as stack:
        yield stack, WarpSpeedSettings.from_mapping({"home": str(stack.home)}).for_component(STACK)
