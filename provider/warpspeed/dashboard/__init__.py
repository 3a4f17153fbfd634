"""The Warp Speed ops dashboard: ledger figures as one page, served by an Airflow UI plugin.

:mod:`warpspeed.dashboard.figures` summarises the ledger tables and the queue,
:mod:`warpspeed.dashboard.page` renders them as one HTML page;
:mod:`warpspeed.dashboard.plugin` is the Airflow 3 plugin, registered through the
``airflow.plugins`` entry point so an installed wheel shows the page with no file copied.
"""
