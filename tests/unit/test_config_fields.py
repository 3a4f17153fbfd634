"""Issue 23: a number in a bundle YAML file is checked by one rule, whichever file it is in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from warpspeed.config.glue_job import GlueJobSettings
from warpspeed.config.maintenance_policy import CompactionPolicy, SnapshotPolicy, TriggerPolicy
from warpspeed.config.workloads import PlanningSettings
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.ledger.prices import FleetShape, InstancePrice

BAD_NUMBERS: list[tuple[Callable[[], Any], str]] = [
    (lambda: GlueJobSettings(number_of_workers="4"), "glue.number_of_workers must be an integer, got '4'"),
    (lambda: GlueJobSettings(glue_version="latest"), "glue.glue_version 'latest'"),
    (lambda: GlueJobSettings(timeout_minutes=0), "glue.timeout_minutes must be positive, got 0"),
    (lambda: GlueJobSettings(waiter_delay=None), "glue.waiter_delay must be an integer, got None"),
    (lambda: GlueJobSettings(concurrency_retry_max_seconds=float("nan")),
     "glue.concurrency_retry_max_seconds must be a number, got nan"),
    (lambda: SnapshotPolicy(max_age_hours=float("nan")), "snapshots.max_age_hours must be a number, got nan"),
    (lambda: TriggerPolicy(min_interval_minutes=-1), "trigger.min_interval_minutes must be zero or more, got -1"),
    (lambda: CompactionPolicy(min_small_files=1), "compaction.min_small_files must be at least 2 (one file is whole)"),
    (lambda: InstancePrice("m5.xlarge", 4, 16, float("inf"), 0.1),
     "instances.m5.xlarge.on_demand must be a number, got inf"),
    (lambda: InstancePrice("m5.xlarge", 4.0, 16, 0.2, 0.1), "instances.m5.xlarge.vcpu must be an integer, got 4.0"),
    (lambda: FleetShape("core", "m5.xlarge", True), "fleet count must be an integer, got True"),
    (lambda: PlanningSettings(rows_cap=True), "planning.rows_cap must be an integer, got True"),
    (lambda: PlanningSettings(single_node_max_rows=-5),
     "planning.single_node_max_rows must be zero or more (0 routes every batch to Spark), got -5"),
]


@pytest.mark.parametrize(("build", "message"), BAD_NUMBERS, ids=[m.split(" ")[0] for _, m in BAD_NUMBERS])
def test_a_bad_number_in_any_config_file_is_a_config_error_naming_the_field(
    build: Callable[[], Any], message: str
) -> None:
    with pytest.raises(WarpSpeedConfigError) as err:
        build()
    assert message in str(err.value)
