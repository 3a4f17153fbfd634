"""Operator that applies Warp Speed's S3 lifecycle rules (:mod:`warpspeed.config.lifecycle`) to the buckets."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlparse

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from warpspeed.config.lifecycle import load_rules
from warpspeed.hooks.s3 import S3LifecycleHook
from warpspeed.operators._base import WarpSpeedOperator, aws_template_fields


def table_locations(catalog: Any) -> list[str]:
    """Return the location of every table in the catalog, with its data and metadata paths."""
    uris = []
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            uris.append(table.location())
            for key in ("write.data.path", "write.metadata.path", "write.object-storage.path"):
                if table.properties.get(key):
                    uris.append(table.properties[key])
    return uris


class ApplyS3LifecycleOperator(WarpSpeedOperator):
    """Apply the lifecycle rules file to the storage bucket; return the rule ids applied.

    Refuses (fails) when any rule overlaps the Iceberg warehouse or a table's data/metadata
    location. Skips when the storage prefix is not on S3 (the embedded stack).

    :param rules_file: the lifecycle rules YAML (``dags/config/s3_lifecycle.yaml``).
    :param protected_uris: extra prefixes no rule may cover (the warehouse and every table
        location in the catalog are always protected).
    """

    template_fields = aws_template_fields("rules_file", "protected_uris")
    ui_color = "#fdebd0"

    def __init__(self, *, rules_file: str, protected_uris: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rules_file = rules_file
        self.protected_uris = protected_uris

    @cached_property
    def hook(self) -> S3LifecycleHook:
        """Build the lifecycle hook lazily."""
        return S3LifecycleHook(aws_conn_id=self.settings.aws_conn_id, region_name=self.settings.region_name)

    def protected(self) -> list[str]:
        """Return every prefix the rules must stay away from."""
        return [self.settings.catalog.warehouse, *table_locations(self.settings.catalog.load()),
                *self.protected_uris]

    def execute(self, context: Context) -> list[str]:
        """Validate and apply the rules."""
        rules = load_rules(self.rules_file)
        prefix = self.settings.storage_prefix
        if urlparse(prefix).scheme not in ("s3", "s3a"):
            raise AirflowSkipException(
                f"storage prefix {prefix} is not on S3; lifecycle rules ({len(rules)}) apply to s3:// only"
            )
        applied = self.hook.apply(rules, prefix, self.protected())
        return [rule_id for ids in applied.values() for rule_id in ids]
