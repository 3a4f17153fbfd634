"""Pure DataFrame transforms that turn raw sources into Tier-2 account features.

Two stages keep the refresh incremental:

1. *Daily aggregates*: each changed raw date partition becomes one row per (tenant, account,
   day) in a small per-source daily table (:func:`engagement_daily`, :func:`intent_daily`,
   :func:`firmographics_daily`). Only changed partitions are read from raw storage.
2. *Features*: for the accounts a change can affect (:func:`affected_keys`), the rolling
   features are recomputed from the daily tables (:func:`activity_features`,
   :func:`latest_firmographics`) and only rows whose values changed (:func:`changed_rows`) are
   merged into ``features.account_features``.

Feature definitions (``as_of`` is the newest raw day of the activity sources):

- ``engagement_7d`` / ``engagement_30d``: engagement events on days ``as_of-6 .. as_of`` /
  ``as_of-29 .. as_of``; 0 for an account without events.
- ``intent_score`` (0-100): ``100 * (1 - exp(-(I + 0.05 * E) / 2))`` where ``I`` is the sum of
  intent signal strengths over 30 days divided by 100 and ``E`` the type-weighted engagement of
  the last 7 days (a meeting weighs 5, a page view 1). It needs both sources.
- ``employee_count`` / ``annual_revenue``: the account's latest firmographic record.

No function here does I/O; they are tested on a local session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

KEYS = ("tenant_id", "account_id")
ACTIVITY_COLUMNS = ("engagement_7d", "engagement_30d", "intent_score")
FIRMOGRAPHIC_COLUMNS = ("employee_count", "annual_revenue")
SHORT_WINDOW_DAYS = 7
LONG_WINDOW_DAYS = 30
EVENT_TYPE_WEIGHTS = {"meeting": 5.0, "form_fill": 4.0, "webinar": 3.0, "email_click": 2.0,
                      "email_open": 1.0, "page_view": 1.0}
ENGAGEMENT_BOOST = 0.05
INTENT_SCALE = 2.0

DataFrame = Any  # pyspark.sql.DataFrame; kept loose so the module imports without pyspark typing


def engagement_daily(events: DataFrame) -> DataFrame:
    """Count each account's events per day: ``events`` and type-weighted ``weighted_events``.

    :param events: engagement events with a ``dt`` date column.
    """
    from pyspark.sql import functions as F

    weight = F.coalesce(
        F.create_map(*[F.lit(x) for kv in EVENT_TYPE_WEIGHTS.items() for x in kv])[F.col("event_type")],
        F.lit(1.0),
    )
    return (
        events.where(F.col("account_id").isNotNull())
        .groupBy(*KEYS, "dt")
        .agg(F.count(F.lit(1)).alias("events"), F.sum(weight).cast("double").alias("weighted_events"))
    )


def intent_daily(signals: DataFrame) -> DataFrame:
    """Sum each account's intent signals per day: ``signals``, ``strength_sum``, ``strength_max``."""
    from pyspark.sql import functions as F

    strength = F.greatest(F.least(F.col("signal_strength"), F.lit(100.0)), F.lit(0.0))
    return (
        signals.where(F.col("account_id").isNotNull() & F.col("signal_strength").isNotNull())
        .groupBy(*KEYS, "dt")
        .agg(F.count(F.lit(1)).alias("signals"), F.sum(strength).alias("strength_sum"),
             F.max(strength).alias("strength_max"))
    )


def firmographics_daily(records: DataFrame) -> DataFrame:
    """Keep each account's latest firmographic record per day (by ``as_of``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy(*KEYS, "dt").orderBy(F.col("as_of").desc_nulls_last())
    return (
        records.where(F.col("account_id").isNotNull())
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select(*KEYS, "dt", "employee_count", "annual_revenue", "as_of")
    )


def window_exit_days(previous_as_of: date | None, as_of: date, window_days: int) -> list[date]:
    """Return the days that leave a ``window_days`` window when ``as_of`` moves forward.

    Accounts active on those days see a feature change although no new data names them.
    """
    if previous_as_of is None or as_of <= previous_as_of:
        return []
    first = previous_as_of - timedelta(days=window_days - 1)
    last = as_of - timedelta(days=window_days)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def activity_exit_days(previous_as_of: date | None, as_of: date) -> list[date]:
    """Return the days that leave the 7- or the 30-day window, sorted."""
    days = set(window_exit_days(previous_as_of, as_of, SHORT_WINDOW_DAYS))
    days |= set(window_exit_days(previous_as_of, as_of, LONG_WINDOW_DAYS))
    return sorted(days)


def affected_keys(*frames: DataFrame) -> DataFrame:
    """Return the distinct (tenant, account) keys found in any of ``frames``."""
    keys = frames[0].select(*KEYS)
    for frame in frames[1:]:
        keys = keys.unionByName(frame.select(*KEYS))
    return keys.distinct()


def activity_features(
    engagement: DataFrame, intent: DataFrame, keys: DataFrame, as_of: date
) -> DataFrame:
    """Compute the activity features of ``keys`` as of ``as_of`` from the daily tables.

    :param engagement: rows of the engagement daily table (any days; the window is applied here).
    :param intent: rows of the intent daily table.
    :param keys: the accounts to compute; accounts without activity get zeros.
    """
    from pyspark.sql import functions as F

    short_start = as_of - timedelta(days=SHORT_WINDOW_DAYS - 1)
    long_start = as_of - timedelta(days=LONG_WINDOW_DAYS - 1)
    in_long = F.col("dt").between(F.lit(long_start), F.lit(as_of))
    in_short = F.col("dt").between(F.lit(short_start), F.lit(as_of))
    eng = engagement.where(in_long).groupBy(*KEYS).agg(
        F.sum(F.when(in_short, F.col("events")).otherwise(0)).cast("double").alias("engagement_7d"),
        F.sum("events").cast("double").alias("engagement_30d"),
        F.sum(F.when(in_short, F.col("weighted_events")).otherwise(0.0)).alias("_weighted_7d"),
    )
    itn = intent.where(in_long).groupBy(*KEYS).agg((F.sum("strength_sum") / 100.0).alias("_intent_30d"))
    mass = F.coalesce(F.col("_intent_30d"), F.lit(0.0)) + ENGAGEMENT_BOOST * F.coalesce(
        F.col("_weighted_7d"), F.lit(0.0)
    )
    return (
        keys.join(eng, list(KEYS), "left")
        .join(itn, list(KEYS), "left")
        .select(
            *KEYS,
            F.coalesce(F.col("engagement_7d"), F.lit(0.0)).alias("engagement_7d"),
            F.coalesce(F.col("engagement_30d"), F.lit(0.0)).alias("engagement_30d"),
            F.round(100.0 * (1.0 - F.exp(-mass / INTENT_SCALE)), 4).alias("intent_score"),
        )
    )


def latest_firmographics(firmographics: DataFrame, keys: DataFrame) -> DataFrame:
    """Return the latest firmographic values of ``keys`` (by day, then ``as_of``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy(*KEYS).orderBy(F.col("dt").desc(), F.col("as_of").desc_nulls_last())
    return (
        firmographics.join(keys, list(KEYS), "left_semi")
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select(*KEYS, *FIRMOGRAPHIC_COLUMNS)
    )


def changed_rows(computed: DataFrame, current: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Keep the rows of ``computed`` that are new or differ from ``current`` in any of ``columns``.

    Comparison is null-safe, so a value that stays missing is not a change.
    """
    from pyspark.sql import functions as F

    cur = current.select(*KEYS, *(F.col(c).alias(f"_cur_{c}") for c in columns), F.lit(True).alias("_exists"))
    same = F.lit(True)
    for c in columns:
        same = same & F.col(c).eqNullSafe(F.col(f"_cur_{c}"))
    return (
        computed.join(cur, list(KEYS), "left")
        .where(F.col("_exists").isNull() | ~same)
        .select(*computed.columns)
    )


#: Tenant ids the MERGE accepts: those of the request schema (lower-case, digits, ``_``, ``-``).
SAFE_TENANT_ID = r"[a-z0-9][a-z0-9_-]{0,62}"
#: The same rule in Java regex syntax for ``rlike`` (``\z``: the very end, not before a newline).
_SAFE_TENANT_RLIKE = rf"^{SAFE_TENANT_ID}\z"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def split_unsafe_tenants(frame: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split ``frame`` into rows whose ``tenant_id`` is safe and the rest (to report, not merge).

    Raw data is not validated at the source: a hostile or broken tenant id must neither reach
    SQL text nor fail the refresh of every other tenant.
    """
    from pyspark.sql import functions as F

    safe = F.coalesce(F.col("tenant_id").rlike(_SAFE_TENANT_RLIKE), F.lit(False))
    return frame.where(safe), frame.where(~safe)


def merge_statement(target: str, source_view: str, columns: Sequence[str], all_columns: Sequence[str],
                    tenants: Sequence[str]) -> str:
    """Return the ``MERGE INTO`` that upserts ``columns`` (plus ``updated_at``) on (tenant, account).

    Columns of ``all_columns`` that the source does not own are left as they are on update and
    inserted as NULL. The tenant list in the ON clause lets Iceberg prune untouched partitions.

    Nothing is escaped: every name and tenant id is validated strictly (identifiers, and
    :data:`SAFE_TENANT_ID` for tenants, matched in full), so no value can change the statement
    Spark parses. Filter rows with :func:`split_unsafe_tenants` first.

    :raises ValueError: naming the first value that is not safe.
    """
    for name in (target, source_view):
        if not _TABLE_NAME.fullmatch(name):
            raise ValueError(f"unsafe table identifier {name!r}: expected dotted [A-Za-z0-9_] names")
    for name in (*columns, *all_columns):
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"unsafe column identifier {name!r}: expected [A-Za-z_][A-Za-z0-9_]*")
    for tenant in tenants:
        if not re.fullmatch(SAFE_TENANT_ID, tenant):
            raise ValueError(f"unsafe tenant id {tenant!r}: expected {SAFE_TENANT_ID} in full "
                             "(no quote, backslash, space or newline)")
    owned = [*columns, "updated_at"]
    updates = ", ".join(f"t.{c} = s.{c}" for c in owned)
    values = ", ".join(f"s.{c}" if c in (*KEYS, *owned) else "NULL" for c in all_columns)
    tenant_list = ", ".join(f"'{t}'" for t in tenants)
    return (
        f"MERGE INTO {target} t USING {source_view} s "
        f"ON t.tenant_id = s.tenant_id AND t.account_id = s.account_id AND t.tenant_id IN ({tenant_list}) "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(all_columns)}) VALUES ({values})"
    )
