"""The dashboard app's API docs need the same login as its pages (issue 13 item 11)."""

from __future__ import annotations

from typing import Any

import pytest

PATHS = ("/docs", "/redoc", "/openapi.json")


@pytest.fixture(scope="module")
def plugin() -> Any:
    from warpspeed.dashboard import plugin as module

    return module


@pytest.mark.parametrize("path", PATHS)
def test_api_docs_require_login_like_the_pages(plugin: Any, path: str) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(plugin.create_app(), raise_server_exceptions=False)
    assert client.get("/api/summary").status_code == 401
    assert client.get(path).status_code == 401


def test_a_logged_in_user_gets_the_docs_and_a_valid_openapi_document(plugin: Any) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(plugin.create_app(auth=lambda: None), raise_server_exceptions=False)
    for path in PATHS:
        assert client.get(path).status_code == 200, path
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/", "/api/summary"}
    assert "/openapi.json" in client.get("/docs").text
