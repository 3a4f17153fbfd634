"""The Airflow REST API of a running :class:`~warpspeed.embedded.live.LiveStack`, as its admin user.

:class:`AirflowRestClient` is what :class:`LiveStack` inherits for tests, soak runs and ``make
airflow`` to read runs and task instances, unpause DAGs and check health. A read (GET) the
api-server leaves unanswered past its timeout is sent again (:data:`READ_ATTEMPTS`); a write is
sent once.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from warpspeed.embedded.state import write_private

__all__ = ["ADMIN_USER", "READ_ATTEMPTS", "SCORING_DAG", "AirflowRestClient"]

SCORING_DAG = "warpspeed_scoring"
ADMIN_USER = "admin"
READ_ATTEMPTS = 3
"""A GET the api-server did not answer within its timeout is sent again, up to this many times in all:
its one worker also serves the tasks' execution API and, on a loaded machine, can stay silent for
longer than a request's timeout without anything being wrong."""


class AirflowRestClient:
    """Call the REST API at :attr:`base_url` as the admin user of the Airflow that :attr:`env` configures."""

    base_url: str
    env: dict[str, str]
    _token: str | None = None

    @property
    def admin_password(self) -> str:
        """Return the admin password (generated once per state folder, kept in passwords.json)."""
        path = Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        if not path.exists():
            chosen = os.environ.get("WARPSPEED_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            write_private(path, json.dumps({ADMIN_USER: chosen}) + "\n")
        return str(json.loads(path.read_text())[ADMIN_USER])

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        """Call the Airflow REST API as the admin user; return the decoded JSON answer."""
        if self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
            return self._request(method, path, body, timeout)  # no login: every request is admin
        if self._token is None:
            self._token = self._request("POST", "/auth/token",
                                        {"username": ADMIN_USER, "password": self.admin_password})["access_token"]
        return self._request(method, path, body, timeout, {"Authorization": f"Bearer {self._token}"})

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30,
                 headers: dict[str, str] | None = None, *, retry: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        attempts = READ_ATTEMPTS if method == "GET" and retry else 1  # only a read is safe to send again
        for attempt in range(1, attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as resp:
                    raw = resp.read()
                return json.loads(raw) if raw else None
            except urllib.error.HTTPError:
                raise  # an answer, not a busy server's silence
            except (TimeoutError, ConnectionError, urllib.error.URLError) as err:
                if attempt == attempts:
                    raise
                print(f"!! GET {path}: {err!r} (attempt {attempt} of {attempts}); sending it again", flush=True)
        raise AssertionError("unreachable")

    def api_healthy(self, wanted: tuple[str, ...] = ("metadatabase",)) -> bool:
        """Tell whether the api-server answers its health check, each of ``wanted`` healthy."""
        try:
            health = self._request("GET", "/api/v2/monitor/health", timeout=5, retry=False)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return all((health.get(k) or {}).get("status") == "healthy" for k in wanted)

    def _once_stored(self, method: str, path: str, body: dict[str, Any] | None = None, *, deadline: float) -> Any:
        """Call the API about a DAG, again every 2 s while it answers 404 (not stored yet) until ``deadline``."""
        while True:
            try:
                return self.api(method, path, body)
            except urllib.error.HTTPError as err:  # 404: its first parse is still to come
                if err.code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def unpause(self, dag_id: str, timeout: float = 300) -> None:
        """Unpause ``dag_id`` once the dag-processor has stored it."""
        self._once_stored("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False},
                          deadline=time.monotonic() + timeout)

    def reparse(self, dag_id: str, timeout: float = 300) -> None:
        """Have the dag-processor parse ``dag_id``'s file now; return once it has stored that parse.

        A parse stores the DAG's next run date. The dag-processor parses a file only every
        ``[dag_processor] min_file_process_interval``, so a DAG unpaused long after its last parse
        would first run for the interval of that parse, not for the one that has just begun.
        """
        deadline = time.monotonic() + timeout
        dag = self._once_stored("GET", f"/api/v2/dags/{dag_id}", deadline=deadline)
        self.api("PUT", f"/api/v2/parseDagFile/{dag['file_token']}")
        while self.api("GET", f"/api/v2/dags/{dag_id}")["last_parsed_time"] == dag["last_parsed_time"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dag-processor did not parse {dag['fileloc']} within {timeout:.0f} s")
            time.sleep(1)

    def task_instances(self, dag_id: str = SCORING_DAG) -> list[dict[str, Any]]:
        """Return every task instance of ``dag_id`` (all runs) from the REST API."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?limit=100&offset={len(out)}")
            out += page["task_instances"]
            if not page["task_instances"] or len(out) >= page["total_entries"]:
                return out

    def dag_runs(self, dag_id: str = SCORING_DAG) -> list[dict[str, Any]]:
        """Return the runs of ``dag_id``, oldest first."""
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=logical_date&limit=100")["dag_runs"])
