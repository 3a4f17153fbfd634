"""Runs on a warm engine that dies: all fail at once, with the reason, after one health check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warpspeed.compute.local.runs import EngineRun, EngineWatch, wait_all


class DeadEngine:
    """An engine handle whose process is gone: every call fails, the health check finds nothing."""

    pid = 4242

    def __init__(self) -> None:
        self.health_checks = 0

    def job(self, job_id: str) -> dict[str, Any]:
        raise ConnectionRefusedError(111, "Connection refused")

    def healthy(self) -> dict[str, Any] | None:
        self.health_checks += 1
        return None


class SlowEngine(DeadEngine):
    """An engine that answers its health check but not (yet) the job query: a slow answer."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def job(self, job_id: str) -> dict[str, Any]:
        self.polls += 1
        if self.polls <= 2:
            raise TimeoutError("timed out")
        return {"state": "COMPLETED", "returncode": 0, "seconds": 1.0}

    def healthy(self) -> dict[str, Any] | None:
        self.health_checks += 1
        return {"pid": self.pid, "running": 1}


def views(tmp_path: Path, n: int) -> list[dict[str, object]]:
    return [{"job_id": f"j{i}", "name": f"batch-{i}", "log_file": str(tmp_path / f"b{i}.log")} for i in range(n)]


def test_the_runs_of_a_dead_engine_fail_together_after_one_health_check(tmp_path: Path) -> None:
    engine = DeadEngine()
    watch = EngineWatch(engine)  # type: ignore[arg-type]
    runs = [EngineRun(engine, view, watch) for view in views(tmp_path, 5)]  # type: ignore[arg-type]
    statuses = wait_all(list(runs), interval=0.01)
    assert [s.state for s in statuses] == ["FAILED"] * 5
    assert all("the warm Spark engine (pid 4242) stopped" in (s.reason or "") for s in statuses)
    assert engine.health_checks == 1


def test_a_slow_answer_from_a_live_engine_is_asked_again(tmp_path: Path) -> None:
    engine = SlowEngine()
    (status,) = wait_all([EngineRun(engine, views(tmp_path, 1)[0])], interval=0.01)  # type: ignore[arg-type]
    assert status.state == "COMPLETED" and engine.health_checks == 2
