"""A deadline notifier for the live test: the triggerer imports it by path and appends each alert to a file."""

from __future__ import annotations

import json
from typing import Any


def record_alert(context: dict[str, Any], path: str) -> None:
    """Append the late window and its run to ``path`` (one JSON line per alert)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"window": context.get("window"), "dag_run_id": context["dag_run"]["dag_run_id"],
                             "deadline": context.get("deadline")}, default=str) + "\n")  # it holds datetimes
