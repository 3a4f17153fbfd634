"""Raw sources of the Tier-2 features: Airflow assets and their storage layout.

Each raw source is a folder of daily partitions under the storage prefix::

    <storage_prefix>/raw/<source>/dt=YYYY-MM-DD/part-<hash>.parquet

Producers write (or rewrite) a whole ``dt=`` folder, then mark the source's asset updated
(an asset event, optionally with ``{"partitions": ["YYYY-MM-DD", ...]}`` in its extra).
The preprocessing DAGs are scheduled on these assets and refresh ``features.account_features``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from warpspeed.config.fields import named
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import join_uri

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from warpspeed.storage.documents import Storage

RAW_FOLDER = "raw"
FEATURES_ASSET_NAME = "warpspeed_features"
FEATURES_ASSET_URI = "iceberg://warpspeed/features/account_features"
_PARTITION = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")


@dataclass(frozen=True)
class RawSource:
    """One raw source: its key, schema (Spark DDL) and Airflow asset.

    :param key: folder name under ``<storage_prefix>/raw/`` (a plain identifier).
    :param ddl: the columns of its Parquet files as a Spark DDL string (without ``dt``).
    :param description: what a row is.
    """

    key: str
    ddl: str
    description: str

    def __post_init__(self) -> None:
        if not self.key.isidentifier():
            raise WarpSpeedConfigError(f"raw source key {self.key!r} must be a plain identifier")

    @property
    def asset_name(self) -> str:
        """Return the Airflow asset name (``warpspeed_raw_<key>``)."""
        return f"warpspeed_raw_{self.key}"

    @property
    def asset_uri(self) -> str:
        """Return the Airflow asset URI (``raw://warpspeed/<key>``)."""
        return f"raw://warpspeed/{self.key}"

    def asset(self) -> Asset:
        """Return the Airflow asset that marks this source updated."""
        from airflow.sdk import Asset

        return Asset(name=self.asset_name, uri=self.asset_uri, group="warpspeed_raw")

    def location(self, storage_prefix: str) -> str:
        """Return the source's root folder under the storage prefix."""
        return join_uri(storage_prefix, RAW_FOLDER, self.key)

    def partition_uri(self, storage_prefix: str, day: date | str) -> str:
        """Return the folder of one daily partition."""
        return join_uri(self.location(storage_prefix), f"dt={day if isinstance(day, str) else day.isoformat()}")


ENGAGEMENT_EVENTS = RawSource(
    "engagement_events",
    "tenant_id STRING, account_id STRING, event_id STRING, event_type STRING, event_ts TIMESTAMP",
    "One first-party engagement event (page view, email open or click, meeting, webinar, form fill).",
)
INTENT_SIGNALS = RawSource(
    "intent_signals",
    "tenant_id STRING, account_id STRING, topic STRING, signal_strength DOUBLE, observed_at TIMESTAMP",
    "One third-party intent signal: research on a topic, strength 0-100.",
)
FIRMOGRAPHICS = RawSource(
    "firmographics",
    "tenant_id STRING, account_id STRING, employee_count DOUBLE, annual_revenue DOUBLE, industry STRING, "
    "as_of TIMESTAMP",
    "A firmographic record of an account; a day's partition holds the accounts that changed that day.",
)
RAW_SOURCES: dict[str, RawSource] = {s.key: s for s in (ENGAGEMENT_EVENTS, INTENT_SIGNALS, FIRMOGRAPHICS)}


def raw_source(key: str) -> RawSource:
    """Return a registered raw source, or say which exist."""
    return named(RAW_SOURCES, key, f"unknown raw source {key!r}", listed="known")


def features_asset() -> Asset:
    """Return the asset of ``features.account_features`` (emitted by every preprocessing run)."""
    from warpspeed.assets.iceberg import DEFAULT_CATALOG, table_asset
    from warpspeed.ledger.tables import FEATURES_TABLE

    return table_asset(DEFAULT_CATALOG, FEATURES_TABLE)


def partition_files(uris: Iterable[str]) -> dict[str, list[str]]:
    """Group data file URIs by their ``dt=YYYY-MM-DD`` folder; other files are ignored."""
    out: dict[str, list[str]] = {}
    for uri in uris:
        match = _PARTITION.search(uri)
        name = uri.rsplit("/", 1)[-1]
        if match and not name.startswith(("_", ".")):
            out.setdefault(match.group(1), []).append(name)
    return {day: sorted(files) for day, files in sorted(out.items())}


def fingerprint(files: Iterable[str]) -> str:
    """Return a short fingerprint of a partition's file names (writers name files by content)."""
    return hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16]


def list_partitions(storage: Storage, storage_prefix: str, source: RawSource) -> dict[str, str]:
    """Return ``{dt: fingerprint}`` of a source's daily partitions, sorted by date."""
    return {day: fingerprint(files)
            for day, files in partition_files(storage.list(source.location(storage_prefix))).items()}


def parse_partitions(extra: Mapping[str, object] | None) -> list[str]:
    """Return the dates an asset event's extra names (``partitions`` list or ``dt`` string).

    Malformed values raise :class:`WarpSpeedConfigError` naming the field, so a producer's
    typo fails the plan loudly instead of being ignored.
    """
    if not extra:
        return []
    values: list[object] = []
    if "partitions" in extra:
        raw = extra["partitions"]
        if not isinstance(raw, list | tuple):
            raise WarpSpeedConfigError(f"asset event extra 'partitions' must be a list of dates, got {raw!r}")
        values.extend(raw)
    if "dt" in extra:
        values.append(extra["dt"])
    days = []
    for value in values:
        try:
            days.append(date.fromisoformat(str(value)).isoformat())
        except ValueError:
            raise WarpSpeedConfigError(
                f"asset event extra 'partitions' holds {value!r}, not a YYYY-MM-DD date"
            ) from None
    return sorted(set(days))
