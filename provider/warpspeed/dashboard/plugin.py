"""Airflow 3 UI plugin: the Warp Speed dashboard page and its navigation entry.

Registered through the ``airflow.plugins`` entry point of the wheel (``pip install`` is all a
deployment needs). The FastAPI app is mounted by the API server under ``/warpspeed``; the external view adds a
"Warp Speed" entry to the UI's Browse menu that shows the page inside the Airflow UI. Every
route requires an authenticated Airflow user who may see the website.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Request  # module level: FastAPI resolves the routes' string annotations here

URL_PREFIX = "/warpspeed"


def create_app(auth: Any = None) -> Any:
    """Build the dashboard's FastAPI app (``/`` HTML page, ``/api/summary`` JSON, API docs).

    Every route, ``/docs``, ``/redoc`` and ``/openapi.json`` included, sits behind ``auth``
    (default: an Airflow user who may see the website); FastAPI's own docs routes would not.

    :param auth: the dependency that authorises a request (tests pass a stand-in).
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI, Query
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse

    from warpspeed.dashboard.figures import load_dashboard
    from warpspeed.dashboard.page import render_html

    app = FastAPI(
        title="Warp Speed dashboard", docs_url=None, redoc_url=None, openapi_url=None,
        dependencies=[Depends(auth or requires_access_view(AccessView.WEBSITE))],
    )

    @app.get("/", response_class=HTMLResponse, response_model=None)
    def page(days: int = Query(7, ge=1, le=90)) -> HTMLResponse:
        """Serve the dashboard page."""
        return HTMLResponse(render_html(load_dashboard(days=days)))

    @app.get("/api/summary", response_model=None)
    def summary(days: int = Query(7, ge=1, le=90)) -> JSONResponse:
        """Serve the dashboard's figures as JSON."""
        return JSONResponse(load_dashboard(days=days).to_dict())

    @app.get("/openapi.json", include_in_schema=False, response_model=None)
    def openapi() -> JSONResponse:
        """Serve the OpenAPI document (behind the same login as the rest)."""
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, response_model=None)
    def docs(request: Request) -> HTMLResponse:
        """Serve Swagger UI for this app."""
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} - Swagger UI")

    @app.get("/redoc", include_in_schema=False, response_model=None)
    def redoc(request: Request) -> HTMLResponse:
        """Serve ReDoc for this app."""
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_redoc_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} - ReDoc")

    return app


class WarpSpeedPlugin(AirflowPlugin):
    """Register the Warp Speed dashboard with the Airflow UI."""

    name = "warpspeed"
    external_views = [
        {
            "name": "Warp Speed",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "warpspeed",
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Build the dashboard's app when the API server asks for it.

        Every Airflow process loads the plugins (each task, the scheduler, the triggerer); building the
        app imports Airflow's core API, about a CPU second each, which only the API server needs.
        """
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Warp Speed dashboard"}]
