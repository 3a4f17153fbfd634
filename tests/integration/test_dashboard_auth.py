"""The dashboard app's API docs need the same login as its pages (issue 13 item 11)."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

from tests.paths import REPO_ROOT

PATHS = ("/docs", "/redoc", "/openapi.json")


def _plugin() -> Any:
    sys.path.insert(0, str(REPO_ROOT / "plugins"))
    try:
        spec = importlib.util.spec_from_file_location("warpspeed_plugin", REPO_ROOT / "plugins" / "warpspeed_plugin.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO_ROOT / "plugins"))


@pytest.fixture(scope="module")
def plugin() -> Any:
    return _plugin()


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
