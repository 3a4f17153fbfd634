"""Plan an incremental refresh of the Tier-2 features (pure): which raw date partitions changed.

A refresh is planned from two inputs: the partitions named by the triggering asset events
(``{"partitions": [...]}`` in their extra) and the raw sources' partition listing compared with
a watermark (the fingerprint of every partition already processed, :class:`RefreshState`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from warpspeed.exceptions import WarpSpeedConfigError

STATE_SCHEMA = "warpspeed.features_state/v1"
ACTIVITY_WINDOW_DAYS = 30
GROUP_OF_SOURCE = {"engagement_events": "activity", "intent_signals": "activity", "firmographics": "firmographics"}


@dataclass(frozen=True)
class RefreshState:
    """The watermark: what each source's partitions looked like when last processed."""

    partitions: dict[str, dict[str, str]] = field(default_factory=dict)
    as_of: str | None = None
    run_key: str | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RefreshState:
        """Read a state document."""
        if doc.get("schema") != STATE_SCHEMA:
            raise WarpSpeedConfigError(f"state document schema {doc.get('schema')!r} is not {STATE_SCHEMA}")
        return cls(partitions={k: dict(v) for k, v in doc.get("partitions", {}).items()},
                   as_of=doc.get("as_of"), run_key=doc.get("run_key"))

    def to_doc(self) -> dict[str, Any]:
        """Return the state as a JSON-able document."""
        return {"schema": STATE_SCHEMA, "partitions": self.partitions, "as_of": self.as_of,
                "run_key": self.run_key, "updated_at": datetime.now(UTC).isoformat()}


@dataclass(frozen=True)
class RefreshPlan:
    """What one refresh reprocesses.

    :param changed: per source, the date partitions to reprocess (sorted).
    :param listing: per source, ``{dt: fingerprint}`` of every partition seen (the next watermark).
    :param as_of: newest day of the activity sources (the rolling windows end there).
    :param previous_as_of: the watermark's ``as_of`` (None on the first refresh).
    :param skipped: per source, changed partitions left out because they are older than any window.
    :param missing: partitions named by asset events that do not exist in storage.
    """

    sources: tuple[str, ...]
    changed: dict[str, list[str]]
    listing: dict[str, dict[str, str]]
    as_of: str | None
    previous_as_of: str | None
    skipped: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """Return the feature groups this plan refreshes (``activity``, ``firmographics``)."""
        return sorted({GROUP_OF_SOURCE[s] for s in self.sources})

    @property
    def has_work(self) -> bool:
        """Tell whether any partition needs reprocessing."""
        return any(self.changed.values())

    def changed_partitions(self) -> list[str]:
        """Return the changed partitions as ``<source>/dt=<day>`` strings."""
        return [f"{s}/dt={d}" for s, days in sorted(self.changed.items()) for d in days]


def plan_refresh(
    sources: Sequence[str],
    listing: Mapping[str, Mapping[str, str]],
    state: RefreshState,
    hinted: Mapping[str, Iterable[str]] | None = None,
    *,
    full: bool = False,
) -> RefreshPlan:
    """Decide which date partitions to reprocess (pure).

    A partition is changed when it is new, its files differ from the watermark's, an asset
    event named it, or ``full`` is set. Activity partitions older than the 30-day window of the
    new ``as_of`` are skipped: they cannot change any feature.
    """
    hinted = hinted or {}
    activity = [s for s in sources if GROUP_OF_SOURCE[s] == "activity"]
    days = [d for s in activity for d in listing.get(s, {})]
    as_of = max(days, default=None)
    if as_of is not None and state.as_of is not None:
        as_of = max(as_of, state.as_of)
    floor = (date.fromisoformat(as_of) - timedelta(days=ACTIVITY_WINDOW_DAYS - 1)).isoformat() if as_of else None
    changed: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    for source in sources:
        seen = state.partitions.get(source, {})
        current = listing.get(source, {})
        named = set(hinted.get(source, ()))
        missing_days = sorted(named - set(current))
        if missing_days:
            missing[source] = missing_days
        todo = sorted(d for d, fp in current.items() if full or d in named or seen.get(d) != fp)
        if GROUP_OF_SOURCE[source] == "activity" and floor is not None:
            skipped_days = [d for d in todo if d < floor]
            if skipped_days:
                skipped[source] = skipped_days
            todo = [d for d in todo if d >= floor]
        changed[source] = todo
    return RefreshPlan(
        sources=tuple(sources), changed=changed, listing={s: dict(listing.get(s, {})) for s in sources},
        as_of=as_of if activity else None, previous_as_of=state.as_of if activity else None,
        skipped=skipped, missing=missing,
    )
