"""Warp Speed: batched multi-tenant Spark scoring on EMR and Iceberg, driven by Airflow.

Modules moved in 0.2.0 (one folder per stage of the window, see ``docs/architecture.md``) can
still be imported by their old paths, with a :class:`DeprecationWarning`: DAG files that import
``warpspeed.operators.scoring``, serialized DAGs that name ``warpspeed.triggers.sqs_intake``
classes and producers that import ``warpspeed.request_schema`` keep working. The table of old
and new paths is :data:`MOVED_MODULES` (and ``docs/CHANGELOG.md``); an old module split in two
also forwards to the homes in :data:`SPLIT_MODULES`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

from warpspeed.jobs import make_job_code_importable

__version__ = "0.2.0"

MOVED_MODULES: dict[str, str] = {
    f"warpspeed.{old}": f"warpspeed.{new}"
    for old, new in {
        "aws_retry": "hooks.aws_retry",
        "carryover": "window.carryover",
        "catalog": "config.catalog",
        "cluster_profiles": "config.cluster_profiles",
        "collected_ids": "window.collected_ids",
        "cost_model": "ledger.cost",
        "emr_request": "compute.emr.request",
        "glue_settings": "config.glue_job",
        "iceberg_commits": "ledger.commits",
        "intake_rules": "intake.rules",
        "maintenance_policy": "config.maintenance_policy",
        "maintenance_report": "maintenance.report",
        "manifests": "window.manifests",
        "model_probe": "models.probe",
        "model_specs": "models.specs",
        "price_table": "ledger.prices",
        "profile_catalog": "config.profile_catalog",
        "raw_sources": "preprocessing.raw_sources",
        "request_schema": "intake.schema",
        "settings": "config.settings",
        "tables": "ledger.tables",
        "windows": "window.rule",
        "workloads": "config.workloads",
        "compute.arrow_local": "compute.local.arrow",
        "compute.local_runs": "compute.local.runs",
        "compute.spark_daemon": "compute.local.spark_daemon",
        "compute.warm_spark": "compute.local.engine",
        "compute.warm_spark_server": "compute.local.engine_server",
        "compute.lease": "compute.emr.lease",
        "compute.pool": "compute.emr.pool",
        "compute.steps": "compute.emr.steps",
        "hooks.emr_pool": "hooks.emr",
        "hooks.glue_preprocessing": "hooks.glue",
        "hooks.iceberg_ledger": "hooks.iceberg",
        "hooks.s3_lifecycle": "hooks.s3",
        "hooks.sqs_intake": "hooks.sqs",
        "links.emr_pool": "links.emr",
        "sensors.sqs_intake": "sensors.sqs",
        "triggers.emr_pool": "triggers.emr",
        "triggers.sqs_intake": "triggers.sqs",
        "operators.sqs_intake": "operators.collect",
        "operators.batch_plan": "operators.plan",
        "operators.scoring": "operators.score",
        "operators.iceberg_ledger": "operators.publish",
        "operators.glue_preprocessing": "operators.preprocess",
        "operators.iceberg_maintenance": "operators.maintenance",
        "operators.s3_lifecycle": "operators.lifecycle",
        "planning.maintenance": "maintenance.plan",
        "planning.refresh": "preprocessing.refresh",
        "services.intake": "intake.service",
        "services.maintenance": "maintenance.service",
        "services.plan_refusals": "planning.refusals",
        "services.preprocessing": "preprocessing.service",
    }.items()
}
"""Old module path -> new module path. ``warpspeed.services`` itself is an empty namespace now."""

SPLIT_MODULES: dict[str, tuple[str, ...]] = {
    "warpspeed.operators.scoring": ("warpspeed.operators.clusters",),
}
"""Old module paths whose contents went to more than one module: the homes besides the one in
:data:`MOVED_MODULES`, searched after it (``EnsureClustersOperator`` left ``operators.scoring``
for ``operators.clusters``, ``ScoreBatchesOperator`` for ``operators.score``)."""


class _MovedModuleLoader(importlib.abc.Loader):
    """Load an old module path as a thin module that forwards every attribute to its new home(s)."""

    def __init__(self, new: str, also: tuple[str, ...] = ()) -> None:
        self.new = new
        self.also = also

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        """Use the default module object."""
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Warn once and forward attribute reads to the module's new home (the first that has the name)."""
        homes = " and ".join((self.new, *self.also))
        warnings.warn(f"{module.__name__} moved to {homes}; import it from there", DeprecationWarning,
                      stacklevel=2)
        targets = [importlib.import_module(new) for new in (self.new, *self.also)]

        def __getattr__(name: str) -> Any:
            for target in targets:
                if hasattr(target, name):
                    return getattr(target, name)
            raise AttributeError(f"module {module.__name__!r} (moved to {homes}) has no attribute {name!r}")

        def __dir__() -> list[str]:
            return sorted({name for target in targets for name in dir(target)})

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dir__ = __dir__  # type: ignore[method-assign]
        module.__doc__ = f"Moved to {homes}."


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Find the old paths of :data:`MOVED_MODULES` (and the emptied ``warpspeed.services``)."""

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        """Return a forwarding spec for an old path, else ``None``."""
        if fullname == "warpspeed.services":
            return importlib.util.spec_from_loader(fullname, None, is_package=True)
        new = MOVED_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(new, SPLIT_MODULES.get(fullname, ())))


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())

make_job_code_importable()  # `spark_jobs` (the job code, imported by its own name) ships in warpspeed/jobs/
