"""The bundle's plugins folder entry for the Warp Speed dashboard (the code lives in the package).

The dashboard ships in the wheel as :mod:`warpspeed.dashboard` and registers through the
``airflow.plugins`` entry point, so an installed package needs nothing in this folder. This
module keeps older deployments that point ``[core] plugins_folder`` here working: it exposes
the plugin only when the entry point is missing (the package is importable from a path but not
installed), so Airflow never registers it twice.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from warpspeed.dashboard.figures import *  # noqa: F403  (``import warpspeed_dashboard`` keeps working)
from warpspeed.dashboard.page import *  # noqa: F403

if not any(ep.value.startswith("warpspeed.") for ep in entry_points(group="airflow.plugins")):
    from warpspeed.dashboard.plugin import WarpSpeedPlugin

    __all__ = ["WarpSpeedPlugin"]
