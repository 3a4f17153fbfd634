"""Airflow 3 UI plugin: the Warp Speed dashboard page and its navigation entry.

Registered through the ``airflow.plugins`` entry point of the wheel (``pip install`` is all a
deployment needs). The FastAPI app is mounted by the API server under ``/warpspeed``; the external view adds a
"Warp Speed" entry to the UI's Browse menu that shows the page inside the Airflow UI. Every
route requires an authenticated Airflow user who may see the website.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from warpspeed.dashboard import page as dashboard

URL_PREFIX = "/warpspeed"


def create_app() -> Any:
    """Build the dashboard's FastAPI app (``/`` HTML page, ``/api/summary`` JSON)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI, Query
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(
        title="Warp Speed dashboard", dependencies=[Depends(requires_access_view(AccessView.WEBSITE))]
    )

    @app.get("/", response_class=HTMLResponse)
    def page(days: int = Query(7, ge=1, le=90)) -> HTMLResponse:
        """Serve the dashboard page."""
        return HTMLResponse(dashboard.render_html(dashboard.load_dashboard(days=days)))

    @app.get("/api/summary")
    def summary(days: int = Query(7, ge=1, le=90)) -> JSONResponse:
        """Serve the dashboard's figures as JSON."""
        return JSONResponse(dashboard.load_dashboard(days=days).to_dict())

    return app


class WarpSpeedPlugin(AirflowPlugin):
    """Register the Warp Speed dashboard with the Airflow UI."""

    name = "warpspeed"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Warp Speed dashboard"}]
    external_views = [
        {
            "name": "Warp Speed",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "warpspeed",
        }
    ]
