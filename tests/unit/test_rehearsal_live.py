"""The live stack on the rehearsal (``make rehearsal``, ``SOAK_BACKEND=emr``) without its servers.

``make rehearsal`` ran two S3Proxy JVMs: the live stack's own and one the rehearsal started for
itself. :func:`live_rehearsal` starts the rehearsal on the live stack's S3 server once it is up;
these pin that order with stand-ins for both stacks (the real ones: tests/integration/test_rehearsal.py
and the soak).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from warpspeed.embedded.rehearsal import live
from warpspeed.exceptions import WarpSpeedError

LIVE_S3 = SimpleNamespace(endpoint_url="http://127.0.0.1:4566")


class FakeRehearsal:
    """The rehearsal's contract with :func:`live_rehearsal`: an S3 server to use, started once, an env for Airflow."""

    def __init__(self, home: Path, jars_dir: Path, idle_seconds: float | None = None) -> None:
        self.home, self.idle_seconds, self.shared_s3 = home, idle_seconds, None
        self.events: list[str] = []

    def __enter__(self) -> FakeRehearsal:
        self.events.append(f"start on {getattr(self.shared_s3, 'endpoint_url', None)}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.append("stop")

    def airflow_env(self, sqs_endpoint: str) -> dict[str, str]:
        return {"AIRFLOW__WARPSPEED__COMPUTE_BACKEND": "emr", "SQS": sqs_endpoint}


class FakeLive:
    """:class:`LiveStack`'s order: its servers (S3 among them), then ``sqs_env``, then ``seed_data``, then Airflow."""

    def __init__(self, home: Path, *, sqs_env: Any, seed_data: Any, **kwargs: Any) -> None:
        self.home, self.sqs_env, self.seed_data, self.kwargs = home, sqs_env, seed_data, kwargs
        self.s3: Any = None
        self.env: dict[str, str] = {}

    def __enter__(self) -> FakeLive:
        self.s3 = SimpleNamespace(server=LIVE_S3)
        self.env = self.sqs_env(SimpleNamespace(endpoint_url="http://127.0.0.1:9324"))
        self.seed_data(["t1"], (5, 1))
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_the_rehearsal_starts_on_the_live_stacks_s3_server_before_the_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[FakeRehearsal] = []
    seeded: list[str] = []
    monkeypatch.setattr(live, "LiveStack", FakeLive)
    monkeypatch.setattr(live, "RehearsalStack", lambda *a, **k: made.append(FakeRehearsal(*a, **k)) or made[-1])
    monkeypatch.setattr(live, "seed_stack", lambda r, tenants, accounts: seeded.append(r.events[-1]))
    with live.live_rehearsal(tmp_path, tmp_path / "jars", idle_seconds=30, sqs_endpoint=lambda sqs: "http://proxy",
                             window_minutes=1) as (stack, rehearsal):
        assert rehearsal is made[0] and rehearsal.home == tmp_path / "emr" and rehearsal.idle_seconds == 30
        assert rehearsal.shared_s3 is LIVE_S3 and rehearsal.events == ["start on http://127.0.0.1:4566"]
        assert seeded == ["start on http://127.0.0.1:4566"]  # seeded on the rehearsal once it runs
        assert stack.env == {"AIRFLOW__WARPSPEED__COMPUTE_BACKEND": "emr", "SQS": "http://proxy"}
        assert stack.kwargs == {"window_minutes": 1}
    assert made[0].events[-1] == "stop" and len(made) == 1


def test_without_the_live_stacks_s3_server_the_rehearsal_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoS3(FakeLive):
        def __enter__(self) -> FakeLive:
            self.sqs_env(SimpleNamespace(endpoint_url="http://127.0.0.1:9324"))
            return self

    made: list[FakeRehearsal] = []
    monkeypatch.setattr(live, "LiveStack", NoS3)
    monkeypatch.setattr(live, "RehearsalStack", lambda *a, **k: made.append(FakeRehearsal(*a, **k)) or made[-1])
    with pytest.raises(WarpSpeedError, match="needs the live stack's S3 server"), \
            live.live_rehearsal(tmp_path, tmp_path / "jars"):
        pass
    assert made[0].events == []
