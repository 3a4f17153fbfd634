"""The Warp Speed ops dashboard: ledger figures as one page, served by an Airflow UI plugin.

:mod:`warpspeed.dashboard.page` turns the ledger tables into the page;
:mod:`warpspeed.dashboard.plugin` is the Airflow 3 plugin, registered through the
``airflow.plugins`` entry point so an installed wheel shows the page with no file copied.
"""
