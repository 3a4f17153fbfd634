"""Where the files that ship beside the provider's code are: the Spark job packages and the DAG bundle.

The repository keeps the job packages (``spark_jobs/``, ``maintenance/``) and the DAG bundle
(``dags/``) at its top level, beside ``provider/``. The wheel installs no top-level package: it
carries them inside the ``warpspeed`` namespace, as ``warpspeed/jobs/spark_jobs/``,
``warpspeed/jobs/maintenance/`` and ``warpspeed/bundle/dags/`` (``setup.py`` maps the folders).
:func:`shipped_folder` finds either layout from where ``warpspeed`` itself is, so a provider
always pairs with its own job code.

The job code imports itself by its own name (``from spark_jobs.jobio import …``), as it does on
a cluster where only ``spark_jobs.zip`` exists; :func:`make_job_code_importable` (called when
``warpspeed`` is imported) lets the name ``spark_jobs`` resolve to the folder beside this
provider. The name ``maintenance`` is never claimed: that job package is only zipped and staged.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

JOB_PACKAGES = ("spark_jobs", "maintenance")
"""The job packages, by the top-level names they have in ``spark_jobs.zip`` and on a cluster."""
WHEEL_FOLDERS = {"spark_jobs": "jobs/spark_jobs", "maintenance": "jobs/maintenance", "dags": "bundle/dags"}
"""Repository folder -> its place inside the installed ``warpspeed`` package (``setup.py`` maps them)."""


def shipped_folder(name: str) -> Path:
    """Return the folder of ``spark_jobs``, ``maintenance`` or ``dags`` that ships with this provider.

    Inside the installed package (a wheel), else beside ``provider/`` when ``warpspeed`` runs from
    a checkout (``PYTHONPATH``, an editable install).

    :raises FileNotFoundError: when neither exists (a broken install).
    """
    package = Path(__file__).resolve().parents[1]  # …/warpspeed
    inside = package / WHEEL_FOLDERS[name]
    if inside.is_dir():
        return inside
    checkout = package.parents[1] / name  # <checkout>/provider/warpspeed -> <checkout>/<name>
    if package.parent.name == "provider" and checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"{inside} is missing: reinstall warpspeed-airflow-provider")


def job_package_dirs() -> list[Path]:
    """Return the folders of the job packages, in :data:`JOB_PACKAGES` order (what ``spark_jobs.zip`` holds)."""
    return [shipped_folder(name) for name in JOB_PACKAGES]


def job_code_root() -> Path:
    """Return the folder holding ``spark_jobs/`` (``PYTHONPATH`` of a ``python -m spark_jobs.…`` process)."""
    return shipped_folder("spark_jobs").parent


class _JobCodeFinder(importlib.abc.MetaPathFinder):
    """Resolve the top-level name ``spark_jobs`` to one folder (its submodules follow its ``__path__``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        """Return the spec of ``spark_jobs`` in :attr:`folder`; None for any other name."""
        if fullname != "spark_jobs":
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)]
        )


def make_job_code_importable() -> None:
    """Let ``import spark_jobs`` find the job code that ships with this provider when ``sys.path`` has none.

    The finder comes after the path finder: a ``spark_jobs`` on ``sys.path`` wins, as the copy of
    ``spark_jobs.zip`` a warm Spark engine runs from must (a running engine keeps its code when
    the installed files change), and a checkout's own folder does. Nothing changes when
    ``spark_jobs`` is imported already, the finder is in place, or the job code cannot be found
    (the first import of it then fails, naming the module).
    """
    if "spark_jobs" in sys.modules or any(isinstance(f, _JobCodeFinder) for f in sys.meta_path):
        return
    try:
        folder = shipped_folder("spark_jobs")
    except FileNotFoundError:
        return
    sys.meta_path.append(_JobCodeFinder(folder))
