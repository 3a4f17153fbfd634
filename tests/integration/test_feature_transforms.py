"""Pure feature transforms on a local Spark session, against hand-computed values."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from spark_jobs.feature_transforms import (
    activity_exit_days,
    activity_features,
    changed_rows,
    engagement_daily,
    firmographics_daily,
    intent_daily,
    latest_firmographics,
    merge_statement,
    split_unsafe_tenants,
    window_exit_days,
)

pytestmark = pytest.mark.integration

D = date.fromisoformat


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_engagement_daily_counts_and_weights(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.testing import assertDataFrameEqual

    events = spark.createDataFrame(
        [("t1", "a1", "meeting", D("2026-01-05")), ("t1", "a1", "page_view", D("2026-01-05")),
         ("t1", "a1", "unknown_type", D("2026-01-05")), ("t1", "a2", "email_click", D("2026-01-05")),
         ("t1", "a1", "page_view", D("2026-01-06")), ("t1", None, "page_view", D("2026-01-06"))],
        "tenant_id string, account_id string, event_type string, dt date",
    )
    expected = spark.createDataFrame(
        [("t1", "a1", D("2026-01-05"), 3, 7.0), ("t1", "a2", D("2026-01-05"), 1, 2.0),
         ("t1", "a1", D("2026-01-06"), 1, 1.0)],
        "tenant_id string, account_id string, dt date, events long, weighted_events double",
    )
    assertDataFrameEqual(engagement_daily(events), expected)


def test_intent_daily_clamps_strength_and_drops_nulls(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.testing import assertDataFrameEqual

    signals = spark.createDataFrame(
        [("t1", "a1", 40.0, D("2026-01-05")), ("t1", "a1", 130.0, D("2026-01-05")),
         ("t1", "a1", None, D("2026-01-05")), ("t1", "a2", -5.0, D("2026-01-05"))],
        "tenant_id string, account_id string, signal_strength double, dt date",
    )
    expected = spark.createDataFrame(
        [("t1", "a1", D("2026-01-05"), 2, 140.0, 100.0), ("t1", "a2", D("2026-01-05"), 1, 0.0, 0.0)],
        "tenant_id string, account_id string, dt date, signals long, strength_sum double, strength_max double",
    )
    assertDataFrameEqual(intent_daily(signals), expected)


def test_firmographics_keep_latest_record_per_day_then_latest_day(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.testing import assertDataFrameEqual

    records = spark.createDataFrame(
        [("t1", "a1", 10.0, 1e6, _ts("2026-01-01T06:00:00+00:00"), D("2026-01-01")),
         ("t1", "a1", 12.0, 1.2e6, _ts("2026-01-01T09:00:00+00:00"), D("2026-01-01")),
         ("t1", "a1", 15.0, 1.5e6, _ts("2026-01-03T06:00:00+00:00"), D("2026-01-03")),
         ("t1", "a2", 99.0, 9e6, _ts("2026-01-01T06:00:00+00:00"), D("2026-01-01"))],
        "tenant_id string, account_id string, employee_count double, annual_revenue double, as_of timestamp, dt date",
    )
    daily = firmographics_daily(records)
    assert daily.count() == 3
    keys = spark.createDataFrame([("t1", "a1")], "tenant_id string, account_id string")
    expected = spark.createDataFrame([("t1", "a1", 15.0, 1.5e6)],
                                     "tenant_id string, account_id string, employee_count double, "
                                     "annual_revenue double")
    assertDataFrameEqual(latest_firmographics(daily, keys), expected)


def test_activity_features_windows_and_intent_score(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.testing import assertDataFrameEqual

    as_of = D("2026-02-10")
    engagement = spark.createDataFrame(
        [("t1", "a1", D("2026-02-10"), 2, 6.0),   # in 7d
         ("t1", "a1", D("2026-02-04"), 3, 3.0),   # first day of the 7d window
         ("t1", "a1", D("2026-02-03"), 5, 5.0),   # outside 7d, inside 30d
         ("t1", "a1", D("2026-01-12"), 7, 7.0),   # first day of the 30d window
         ("t1", "a1", D("2026-01-11"), 100, 100.0),  # outside both
         ("t1", "a1", D("2026-02-11"), 100, 100.0)],  # after as_of: ignored
        "tenant_id string, account_id string, dt date, events long, weighted_events double",
    )
    intent = spark.createDataFrame(
        [("t1", "a1", D("2026-01-20"), 2, 150.0, 90.0), ("t1", "a2", D("2026-02-09"), 1, 50.0, 50.0),
         ("t1", "a2", D("2025-12-01"), 1, 99.0, 99.0)],
        "tenant_id string, account_id string, dt date, signals long, strength_sum double, strength_max double",
    )
    keys = spark.createDataFrame([("t1", "a1"), ("t1", "a2"), ("t1", "a3")], "tenant_id string, account_id string")
    score_a1 = round(100 * (1 - math.exp(-(1.5 + 0.05 * 9.0) / 2)), 4)
    score_a2 = round(100 * (1 - math.exp(-0.5 / 2)), 4)
    expected = spark.createDataFrame(
        [("t1", "a1", 5.0, 17.0, score_a1), ("t1", "a2", 0.0, 0.0, score_a2), ("t1", "a3", 0.0, 0.0, 0.0)],
        "tenant_id string, account_id string, engagement_7d double, engagement_30d double, intent_score double",
    )
    assertDataFrameEqual(activity_features(engagement, intent, keys, as_of), expected)


def test_changed_rows_is_null_safe_and_keeps_new_keys(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.testing import assertDataFrameEqual

    schema = "tenant_id string, account_id string, x double, y double"
    computed = spark.createDataFrame(
        [("t1", "same", 1.0, None), ("t1", "diff", 1.0, 2.0), ("t1", "null_now", None, 2.0), ("t2", "new", 1.0, 1.0)],
        schema)
    current = spark.createDataFrame(
        [("t1", "same", 1.0, None), ("t1", "diff", 1.0, 3.0), ("t1", "null_now", 5.0, 2.0), ("t9", "other", 0.0, 0.0)],
        schema)
    expected = spark.createDataFrame(
        [("t1", "diff", 1.0, 2.0), ("t1", "null_now", None, 2.0), ("t2", "new", 1.0, 1.0)], schema)
    assertDataFrameEqual(changed_rows(computed, current, ["x", "y"]), expected)


def test_window_exit_days() -> None:
    assert window_exit_days(None, D("2026-01-10"), 7) == []
    assert window_exit_days(D("2026-01-10"), D("2026-01-10"), 7) == []
    assert window_exit_days(D("2026-01-10"), D("2026-01-11"), 7) == [D("2026-01-04")]
    assert window_exit_days(D("2026-01-10"), D("2026-01-12"), 7) == [D("2026-01-04"), D("2026-01-05")]
    assert activity_exit_days(D("2026-01-30"), D("2026-01-31")) == [D("2026-01-01"), D("2026-01-24")]


def test_merge_statement_updates_owned_columns_and_prunes_tenants() -> None:
    sql = merge_statement("cat.features.account_features", "src", ["employee_count"],
                          ["tenant_id", "account_id", "engagement_7d", "employee_count", "updated_at"], ["t1", "t2"])
    assert "ON t.tenant_id = s.tenant_id AND t.account_id = s.account_id AND t.tenant_id IN ('t1', 't2')" in sql
    assert "UPDATE SET t.employee_count = s.employee_count, t.updated_at = s.updated_at " in sql
    assert "VALUES (s.tenant_id, s.account_id, NULL, s.employee_count, s.updated_at)" in sql
    with pytest.raises(ValueError, match="quote"):
        merge_statement("t", "s", ["x"], ["x"], ["t1' OR '1'='1"])


# -- issue 13 item 3: ids from raw data never change the MERGE Spark parses ------------------------

HOSTILE_TENANTS = ["(\\", ") OR 1=1 WHEN MATCHED THEN DELETE --", "acme\n", "a\\'b", "t1`", "ACME", ""]


def _merge_actions(spark, sql: str) -> str:  # type: ignore[no-untyped-def]
    """Return the logical plan Spark's own parser builds from ``sql`` (no table needed)."""
    return str(spark._jsparkSession.sessionState().sqlParser().parsePlan(sql).toString())


def test_the_issue_ids_make_spark_parse_only_update_and_insert(spark) -> None:  # type: ignore[no-untyped-def]
    for tenants in (["(\\", ") OR 1=1 WHEN MATCHED THEN DELETE --"], *([t] for t in HOSTILE_TENANTS)):
        with pytest.raises(ValueError, match="tenant id"):
            merge_statement("cat.features.account_features", "src", ["employee_count"],
                            ["tenant_id", "account_id", "employee_count", "updated_at"], tenants)
    plan = _merge_actions(spark, merge_statement(
        "cat.features.account_features", "src", ["employee_count"],
        ["tenant_id", "account_id", "employee_count", "updated_at"], ["t1", "acme-01", "a_b"]))
    plan = plan.lower()  # e.g. "... [updateaction(...)], [insertaction(...)]"; the old code gave "[deleteaction(none)]"
    assert "updateaction" in plan and "insertaction" in plan and "deleteaction" not in plan
    assert "in (t1,acme-01,a_b))" in plan


@pytest.mark.parametrize("args", [
    ("t; DROP TABLE x", "s", ["c"], ["c"]), ("t", "s s2", ["c"], ["c"]),
    ("t", "s", ["c = 1, x"], ["c"]), ("t", "s", ["c"], ["c) --"]),
])
def test_identifiers_are_validated_too(args: tuple) -> None:
    with pytest.raises(ValueError, match="identifier"):
        merge_statement(*args, ["t1"])


def test_rows_of_unsafe_tenants_are_split_off_before_the_merge(spark) -> None:  # type: ignore[no-untyped-def]
    rows = [("acme", "a1"), ("(\\", "a2"), (") OR 1=1 WHEN MATCHED THEN DELETE --", "a3"), ("acme\n", "a4"),
            ("t-2", "a5")]
    frame = spark.createDataFrame(rows, "tenant_id string, account_id string")
    safe, unsafe = split_unsafe_tenants(frame)
    assert sorted(r.account_id for r in safe.collect()) == ["a1", "a5"]
    assert sorted(r.account_id for r in unsafe.collect()) == ["a2", "a3", "a4"]
