"""Map the repository's top-level job and bundle folders into the ``warpspeed`` namespace of the wheel.

Everything else is declared in ``pyproject.toml``. The wheel installs one top-level package,
``warpspeed``: ``spark_jobs/`` and ``maintenance/`` ship as ``warpspeed/jobs/…`` and the DAG
bundle ``dags/`` as ``warpspeed/bundle/dags/`` (the templates of ``warpspeed init``), so the
repository's folders stay the one source of both (see ``provider/warpspeed/jobs/__init__.py``).
"""

from setuptools import find_packages, setup

MAPPED = {
    "warpspeed.jobs.spark_jobs": "spark_jobs",
    "warpspeed.jobs.maintenance": "maintenance",
    "warpspeed.bundle.dags": "dags",
}

setup(
    packages=[*find_packages("provider", include=["warpspeed", "warpspeed.*"]), *MAPPED],
    package_dir={"": "provider", **MAPPED},
)
