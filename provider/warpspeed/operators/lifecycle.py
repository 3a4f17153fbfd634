"""Operator that applies Warp Speed's S3 lifecycle rules (:mod:`warpspeed.config.lifecycle`) to the buckets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlparse

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from warpspeed.config.lifecycle import load_rules
from warpspeed.config.maintenance_policy import MaintenancePolicy
from warpspeed.hooks.s3 import S3LifecycleHook
from warpspeed.operators._base import WarpSpeedOperator, aws_template_fields

TABLE_PATH_PROPERTIES = ("write.data.path", "write.metadata.path", "write.object-storage.path")


def table_locations(catalog: Any, identifiers: Iterable[str]) -> list[str]:
    """Return the location, data and metadata paths of the named tables (those that exist).

    Only these tables are loaded: in a shared catalog the role may not read other teams' tables,
    and the lifecycle hook finds any table in the rules' buckets from S3 itself.
    """
    uris = []
    for identifier in identifiers:
        if not catalog.table_exists(identifier):
            continue
        table = catalog.load_table(identifier)
        uris.append(table.location())
        uris += [table.properties[key] for key in TABLE_PATH_PROPERTIES if table.properties.get(key)]
    return uris


class ApplyS3LifecycleOperator(WarpSpeedOperator):
    """Apply the lifecycle rules file to the storage bucket; return the rule ids applied.

    Refuses (fails) when any rule overlaps the Iceberg warehouse, a registered table's
    data/metadata location, or any Iceberg table the hook finds under or around a rule's prefix
    in S3 (another team's too, without reading its catalog entry). Skips when the storage prefix
    is not on S3 (the embedded stack).

    :param rules_file: the lifecycle rules YAML (``dags/config/s3_lifecycle.yaml``).
    :param policy_file: the maintenance registry (``dags/config/maintenance.yaml``): the tables
        whose catalog locations are protected (the only tables loaded).
    :param protected_uris: extra prefixes no rule may cover.
    """

    s3_component = "maintenance"

    template_fields = aws_template_fields("rules_file", "policy_file", "protected_uris")
    ui_color = "#fdebd0"

    def __init__(self, *, rules_file: str, policy_file: str | None = None, protected_uris: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rules_file = rules_file
        self.policy_file = policy_file
        self.protected_uris = list(protected_uris)

    @cached_property
    def hook(self) -> S3LifecycleHook:
        """Build the lifecycle hook lazily: on AWS through the Airflow connection, else the storage's own client."""
        access = self.settings.s3_access()
        return S3LifecycleHook(aws_conn_id=self.settings.aws_conn_id, region_name=self.settings.region_name,
                               client=None if access.is_aws else access.boto3_client())

    def protected(self) -> list[str]:
        """Return the warehouse, the registered tables' locations and ``protected_uris``."""
        registered = [t.identifier for t in MaintenancePolicy.load(self.policy_file).tables] if self.policy_file else []
        locations = table_locations(self.settings.catalog.load(), registered) if registered else []
        return [self.settings.catalog.warehouse, *locations, *self.protected_uris]

    def execute(self, context: Context) -> list[str]:
        """Validate and apply the rules."""
        rules = load_rules(self.rules_file)
        prefix = self.settings.storage_prefix
        if urlparse(prefix).scheme not in ("s3", "s3a"):
            raise AirflowSkipException(
                f"storage prefix {prefix} is not on S3; lifecycle rules ({len(rules)}) apply to s3:// only"
            )
        from botocore.exceptions import ClientError

        try:
            applied = self.hook.apply(rules, prefix, self.protected())
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "NotImplemented":
                raise
            raise AirflowSkipException(  # S3Proxy, the embedded stack's server, has no bucket lifecycle
                f"the S3 server of {prefix} does not implement bucket lifecycle configuration "
                f"({len(rules)} rules not applied): they apply on Amazon S3"
            ) from err
        return [rule_id for ids in applied.values() for rule_id in ids]
