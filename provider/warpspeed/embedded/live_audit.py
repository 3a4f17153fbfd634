"""What a live scoring run looked like, from the REST API's dag runs and task instances.

Pure functions over the JSON the Airflow REST API returns, shared by the live acceptance test,
``make bench`` (``live_window_seconds``) and soak runs: per run the window, when it was
published, how many task attempts were retries, and when each workload's score task ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SCORE_TASK = "score_batches"
PUBLISH_TASK = "publish"


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class RunAudit:
    """One scoring run: its window end, publish time, retries and score task spans."""

    run_id: str
    state: str
    window_end: datetime
    published_at: datetime | None
    retried_tasks: tuple[str, ...]
    score_spans: Mapping[str, tuple[datetime, datetime]]

    @property
    def close_to_publish_seconds(self) -> float | None:
        """Return the seconds from the window's end to the end of ``publish`` (None if unpublished)."""
        return None if self.published_at is None else (self.published_at - self.window_end).total_seconds()

    @property
    def score_tasks_overlapped(self) -> bool:
        """Tell whether every workload's score task was running at one same moment."""
        if len(self.score_spans) < 2:
            return False
        return max(s for s, _ in self.score_spans.values()) < min(e for _, e in self.score_spans.values())


def audit_runs(
    runs: Iterable[Mapping[str, Any]], task_instances: Iterable[Mapping[str, Any]], window_minutes: int
) -> list[RunAudit]:
    """Return one :class:`RunAudit` per run (oldest first); a run's window ends W after its logical date."""
    by_run: dict[str, list[Mapping[str, Any]]] = {}
    for ti in task_instances:
        by_run.setdefault(str(ti["dag_run_id"]), []).append(ti)
    audits = []
    for run in runs:
        tis = by_run.get(str(run["dag_run_id"]), [])
        logical = _ts(run.get("logical_date") or run.get("run_after"))
        assert logical is not None
        publish = [ti for ti in tis if ti["task_id"] == PUBLISH_TASK and ti["state"] == "success"]
        spans = {}
        for ti in tis:
            start, end = _ts(ti.get("start_date")), _ts(ti.get("end_date"))
            if ti["task_id"] == SCORE_TASK and start and end:
                spans[str(ti.get("rendered_map_index") or ti["map_index"])] = (start, end)
        audits.append(RunAudit(
            run_id=str(run["dag_run_id"]),
            state=str(run["state"]),
            window_end=logical + timedelta(minutes=window_minutes),
            published_at=_ts(publish[0]["end_date"]) if publish else None,
            retried_tasks=tuple(
                f"{ti['task_id']}[{ti['map_index']}] try {ti['try_number']}" for ti in tis if int(ti["try_number"]) > 1
            ),
            score_spans=spans,
        ))
    return sorted(audits, key=lambda a: a.window_end)
