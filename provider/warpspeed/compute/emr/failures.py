"""Say why a cluster took its steps down with it, in the terms of the profile that made it (pure).

A step that EMR cancelled because its cluster failed (a bootstrap action that exited non-zero, an
instance fleet that never got capacity) carries no failure of its own: ListSteps says CANCELLED and
nothing more. The cluster's ``StateChangeReason`` says what happened, in EMR's words::

    BOOTSTRAP_FAILURE: On the master instance (i-0abc), bootstrap action 1 returned a non-zero return code

:func:`cluster_failure` turns that into what a user fixes: the profile key of the action, the
interpreter it was given, and where its log is (``<log_uri>/<cluster>/node/<instance>/
bootstrap-actions/<n>/stderr.gz``), with the log's last words when they can be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from warpspeed.config.cluster_profiles import ClusterProfile
from warpspeed.storage.documents import join_uri

QUIET_ENDS = frozenset({"USER_REQUEST", "ALL_STEPS_COMPLETED"})
"""Cluster ends that explain nothing about a step (it was cancelled by someone, or the cluster idled out)."""
BOOTSTRAP = re.compile(r"\((i-[0-9a-zA-Z]+)\).*bootstrap action (\d+)")


def bootstrap_log(log_uri: str | None, cluster_id: str, instance: str, number: int) -> str | None:
    """Return where EMR puts bootstrap action ``number``'s stderr on ``instance``."""
    if not log_uri:
        return None
    return join_uri(log_uri.replace("s3n://", "s3://"), cluster_id, "node", instance, "bootstrap-actions",
                    str(number), "stderr.gz")


def cluster_failure(
    cluster: Mapping[str, Any], profile: ClusterProfile | None, read_log: Callable[[str], str | None] = lambda _u: None,
) -> str | None:
    """Return why a cluster (DescribeCluster's ``Cluster``) ended, naming the profile key; None if it did not fail.

    :param read_log: returns the text of a log object (None when it cannot be read yet: EMR
        uploads node logs every few minutes).
    """
    status = cluster.get("Status") or {}
    state, change = str(status.get("State") or ""), status.get("StateChangeReason") or {}
    code, message = change.get("Code"), change.get("Message") or ""
    if not state.startswith("TERMINAT") or code in QUIET_ENDS or not (code or message):
        return None
    cluster_id = str(cluster.get("Id"))
    said = f"cluster {cluster_id} {state} ({code}: {message})"
    found = BOOTSTRAP.search(message) if code == "BOOTSTRAP_FAILURE" else None
    if found is None:
        return said
    instance, number = found.group(1), int(found.group(2))
    log = bootstrap_log(cluster.get("LogUri"), cluster_id, instance, number)
    where = ""
    if profile is not None and 0 < number <= len(profile.bootstrap_actions):
        action = profile.bootstrap_actions[number - 1]
        where = (f"; profiles.{profile.name}.bootstrap_actions[{number - 1}] ({action.name}, {action.path}) "
                 f"failed on the interpreter profiles.{profile.name}.python={profile.python}")
    last = _last_words(read_log(log)) if log else None
    return said + where + (f"; its log {log}" if log else "") + (f": {last}" if last else "")


def _last_words(text: str | None) -> str | None:
    """Return the line a failed script ended on (Warp Speed's bootstrap says ``warpspeed bootstrap: ...``)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("warpspeed bootstrap:")]
    found = ours or lines
    return found[-1] if found else None
