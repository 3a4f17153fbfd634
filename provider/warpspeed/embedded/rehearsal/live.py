"""The live stack on the rehearsal: ``make rehearsal`` and the soak's ``SOAK_BACKEND=emr``.

:func:`live_rehearsal` runs :class:`~warpspeed.embedded.live.LiveStack` (the embedded servers,
Airflow's four components) with ``compute_backend = emr`` on a :class:`RehearsalStack`. The live
stack's S3 server is the rehearsal's too: the rehearsal starts once that server is up (from the
live stack's ``sqs_env`` hook, before it seeds), so one S3Proxy serves Airflow, the nodes and the
catalog's data, and an outage of it (the soak's ``s3`` kill) hits the EMR path as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from warpspeed.embedded.live import LiveStack
from warpspeed.embedded.rehearsal.data import seed_stack
from warpspeed.embedded.rehearsal.stack import RehearsalStack
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.exceptions import WarpSpeedError


@contextmanager
def live_rehearsal(
    home: Path, jars_dir: Path, *, idle_seconds: float | None = None,
    sqs_endpoint: Callable[[LocalSqs], str] | None = None, **live: Any,
) -> Iterator[tuple[LiveStack, RehearsalStack]]:
    """Run the live stack in ``home`` on a rehearsal in ``home/emr``; stop both on exit.

    :param idle_seconds: every cluster's idle timeout instead of its profile's (None: the profile's).
    :param sqs_endpoint: given the SQS server, returns the URL Airflow reaches SQS at (the soak's fault
        proxy); None: the server's.
    :param live: :class:`LiveStack`'s other arguments (window, producer, extra environment...).
    """
    rehearsal = RehearsalStack(home / "emr", jars_dir, idle_seconds=idle_seconds)
    with ExitStack() as started:
        stack: LiveStack | None = None

        def on_servers(sqs: LocalSqs) -> dict[str, str]:
            """Start the rehearsal on the live stack's S3 server; return what points Airflow at it."""
            if stack is None or stack.s3 is None:
                raise WarpSpeedError("the rehearsal needs the live stack's S3 server, and it runs none")
            rehearsal.shared_s3 = stack.s3.server
            started.enter_context(rehearsal)
            return rehearsal.airflow_env(sqs_endpoint(sqs) if sqs_endpoint else sqs.endpoint_url)

        stack = LiveStack(home, sqs_env=on_servers,
                          seed_data=lambda tenants, accounts: seed_stack(rehearsal, tenants, accounts), **live)
        with stack:
            yield stack, rehearsal
