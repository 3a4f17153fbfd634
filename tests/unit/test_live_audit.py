from __future__ import annotations

from warpspeed.embedded.live_audit import audit_runs


def _ti(task: str, start: str | None, end: str | None, *, map_index: int = -1, name: str | None = None,
        tries: int = 1, state: str = "success", run: str = "r1") -> dict:
    return {"dag_run_id": run, "task_id": task, "map_index": map_index, "rendered_map_index": name,
            "start_date": start, "end_date": end, "try_number": tries, "state": state}


def test_audit_reads_latency_retries_and_overlap() -> None:
    runs = [{"dag_run_id": "r1", "state": "success", "logical_date": "2026-11-20T21:00:00Z"},
            {"dag_run_id": "r2", "state": "running", "logical_date": "2026-11-20T21:02:00Z"}]
    tis = [
        _ti("score_batches", "2026-11-20T21:02:10Z", "2026-11-20T21:03:00Z", map_index=0, name="intent"),
        _ti("score_batches", "2026-11-20T21:02:20Z", "2026-11-20T21:03:30Z", map_index=1, name="scoring", tries=2),
        _ti("publish", "2026-11-20T21:03:31Z", "2026-11-20T21:03:40Z"),
        _ti("score_batches", "2026-11-20T21:04:10Z", "2026-11-20T21:04:20Z", map_index=0, name="intent", run="r2"),
        _ti("score_batches", "2026-11-20T21:04:30Z", "2026-11-20T21:04:50Z", map_index=1, name="scoring", run="r2"),
    ]
    first, second = audit_runs(runs, tis, window_minutes=2)
    assert first.close_to_publish_seconds == 100.0
    assert first.retried_tasks == ("score_batches[1] try 2",)
    assert first.score_tasks_overlapped and set(first.score_spans) == {"intent", "scoring"}
    assert second.close_to_publish_seconds is None and not second.score_tasks_overlapped
