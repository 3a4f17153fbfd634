"""Synthetic raw sources for the embedded stack: daily Parquet partitions of realistic data.

Per day and tenant: engagement events (Poisson per account, weekday-heavy, a few hot
accounts), intent signals (a minority of accounts researching topics) and firmographics
(everything on the first day, then the few accounts that changed). Output is deterministic
for a seed, so a rewrite of the same day yields the same files.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from warpspeed.embedded.seed import tenant_ids
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.preprocessing.raw_sources import ENGAGEMENT_EVENTS, FIRMOGRAPHICS, INTENT_SIGNALS, RawSource
from warpspeed.storage.documents import Storage, join_uri, local_path

EVENT_TYPES = ("page_view", "email_open", "email_click", "webinar", "meeting", "form_fill")
EVENT_WEIGHTS = (0.55, 0.2, 0.1, 0.07, 0.03, 0.05)
TOPICS = ("crm", "data_warehouse", "security", "analytics", "payments", "hr_software")


@dataclass(frozen=True)
class RawDataMix:
    """How much synthetic data a day holds.

    :param accounts_per_tenant: accounts of each tenant (ids as in :mod:`warpspeed.embedded.seed`).
    :param events_per_account: mean engagement events per account on a weekday.
    :param intent_share: share of accounts with intent signals on a given day.
    :param firmographic_change_rate: share of accounts whose firmographics change on a day.
    """

    tenants: int = 3
    accounts_per_tenant: int = 50
    events_per_account: float = 2.0
    intent_share: float = 0.25
    firmographic_change_rate: float = 0.03
    seed: int = 17

    def __post_init__(self) -> None:
        if self.tenants < 1 or self.accounts_per_tenant < 1:
            raise WarpSpeedConfigError("RawDataMix.tenants and accounts_per_tenant must be at least 1")
        if not 0 <= self.intent_share <= 1 or not 0 <= self.firmographic_change_rate <= 1:
            raise WarpSpeedConfigError("RawDataMix.intent_share and firmographic_change_rate must be in [0, 1]")


def _rng(mix: RawDataMix, *parts: object) -> Any:
    import numpy as np

    digest = hashlib.sha256(repr((mix.seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _accounts(tenant: str, mix: RawDataMix) -> list[str]:
    return [f"{tenant}-a{j:06d}" for j in range(mix.accounts_per_tenant)]


def engagement_events(day: date, tenant: str, mix: RawDataMix) -> Any:
    """Return one tenant's engagement events of ``day`` as a pyarrow table."""
    import numpy as np
    import pyarrow as pa

    rng = _rng(mix, "engagement", tenant, day.isoformat())
    accounts = _accounts(tenant, mix)
    hot = _rng(mix, "hot", tenant).random(len(accounts)) < 0.1  # stable hot accounts
    weekday = 1.0 if day.weekday() < 5 else 0.3
    counts = rng.poisson(mix.events_per_account * weekday * np.where(hot, 4.0, 1.0))
    n = int(counts.sum())
    account_col = np.repeat(np.array(accounts, dtype=object), counts)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    seconds = np.sort(rng.integers(0, 86400, n))
    return pa.table({
        "tenant_id": pa.array([tenant] * n, pa.string()),
        "account_id": pa.array(account_col, pa.string()),
        "event_id": pa.array([f"{tenant}-{day:%Y%m%d}-{i:07d}" for i in range(n)], pa.string()),
        "event_type": pa.array(rng.choice(EVENT_TYPES, n, p=EVENT_WEIGHTS), pa.string()),
        "event_ts": pa.array([start + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")),
    })


def intent_signals(day: date, tenant: str, mix: RawDataMix) -> Any:
    """Return one tenant's intent signals of ``day`` as a pyarrow table."""
    import numpy as np
    import pyarrow as pa

    rng = _rng(mix, "intent", tenant, day.isoformat())
    accounts = np.array(_accounts(tenant, mix), dtype=object)
    researching = accounts[rng.random(len(accounts)) < mix.intent_share]
    per_account = rng.integers(1, 4, len(researching))
    account_col = np.repeat(researching, per_account)
    n = len(account_col)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return pa.table({
        "tenant_id": pa.array([tenant] * n, pa.string()),
        "account_id": pa.array(account_col, pa.string()),
        "topic": pa.array(rng.choice(TOPICS, n), pa.string()),
        "signal_strength": pa.array(np.round(rng.beta(2.0, 3.0, n) * 100, 2), pa.float64()),
        "observed_at": pa.array([start + timedelta(seconds=int(s)) for s in rng.integers(0, 86400, n)],
                                pa.timestamp("us", tz="UTC")),
    })


def firmographics(day: date, tenant: str, mix: RawDataMix, *, full: bool) -> Any:
    """Return the firmographic records of ``day``: every account when ``full``, else the changed ones."""
    import numpy as np
    import pyarrow as pa

    rng = _rng(mix, "firmographics", tenant, day.isoformat())
    accounts = np.array(_accounts(tenant, mix), dtype=object)
    changed = accounts if full else accounts[rng.random(len(accounts)) < mix.firmographic_change_rate]
    n = len(changed)
    base = _rng(mix, "firmo-base", tenant)
    employees = np.round(base.lognormal(4.5, 1.2, len(accounts)))
    revenue = np.round(base.lognormal(14.0, 1.5, len(accounts)))
    index = np.array([int(a.rsplit("a", 1)[-1]) for a in changed], dtype=int)
    growth = 1.0 if full else rng.normal(1.05, 0.05, n)
    industries = ("software", "manufacturing", "finance", "retail", "healthcare")
    as_of = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    return pa.table({
        "tenant_id": pa.array([tenant] * n, pa.string()),
        "account_id": pa.array(changed, pa.string()),
        "employee_count": pa.array(np.round(employees[index] * growth) if n else [], pa.float64()),
        "annual_revenue": pa.array(np.round(revenue[index] * growth) if n else [], pa.float64()),
        "industry": pa.array([industries[i % len(industries)] for i in index], pa.string()),
        "as_of": pa.array([as_of] * n, pa.timestamp("us", tz="UTC")),
    })


def write_partition(storage_prefix: str, source: RawSource, day: date, table: Any,
                    storage: Storage | None = None) -> str:
    """Replace one daily partition with ``table`` (one Parquet file named by its content).

    :param storage: the storage of an ``s3://`` prefix (:meth:`WarpSpeedSettings.storage`); a
        local folder is replaced in one rename, a prefix on S3 gets the new file, then loses the others.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    name = f"part-{hashlib.sha256(data).hexdigest()[:16]}.parquet"
    partition = source.partition_uri(storage_prefix, day)
    if storage_prefix.startswith(("s3://", "s3a://")):
        if storage is None:
            raise WarpSpeedConfigError(f"storage_prefix {storage_prefix!r}: give the generator its storage")
        storage.write_bytes(join_uri(partition, name), data)
        for stale in storage.list(partition):
            if not stale.endswith(f"/{name}"):
                storage.delete(stale)
        return partition
    folder = local_path(partition)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / name).write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder.as_uri()


def write_day(
    storage_prefix: str,
    day: date,
    mix: RawDataMix | None = None,
    *,
    sources: tuple[RawSource, ...] = (ENGAGEMENT_EVENTS, INTENT_SIGNALS, FIRMOGRAPHICS),
    tenants: list[str] | None = None,
    full_firmographics: bool = False,
    storage: Storage | None = None,
) -> dict[str, str]:
    """Write (or rewrite) one day of the given sources; return ``{source: partition URI}``.

    :param tenants: the tenants that have data that day (default: the mix's tenants).
    :param full_firmographics: write every account's firmographics (an initial load).
    :param storage: the storage of an ``s3://`` prefix (a local folder needs none).
    """
    import pyarrow as pa

    mix = mix or RawDataMix()
    tenants = tenants if tenants is not None else tenant_ids(mix.tenants)
    makers = {
        ENGAGEMENT_EVENTS.key: lambda t: engagement_events(day, t, mix),
        INTENT_SIGNALS.key: lambda t: intent_signals(day, t, mix),
        FIRMOGRAPHICS.key: lambda t: firmographics(day, t, mix, full=full_firmographics),
    }
    written = {}
    for source in sources:
        table = pa.concat_tables([makers[source.key](t) for t in tenants])
        written[source.key] = write_partition(storage_prefix, source, day, table, storage)
    return written


def write_days(storage_prefix: str, first_day: date, days: int, mix: RawDataMix | None = None,
               storage: Storage | None = None) -> list[str]:
    """Write ``days`` consecutive days of every source (full firmographics on the first); return the dates."""
    out = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        write_day(storage_prefix, day, mix, full_firmographics=offset == 0, storage=storage)
        out.append(day.isoformat())
    return out
