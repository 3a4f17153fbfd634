"""Optimistic commit retries for pyiceberg, as Iceberg's Java library does them.

Shared by the provider (:mod:`warpspeed.ledger.commits` re-exports it) and the single-node
Arrow engine (:mod:`spark_jobs.score_arrow`), which ships without ``warpspeed``.

Two writers that commit to one table at the same moment both base their change on the same
snapshot; the catalog accepts the first and rejects the second (``CommitFailedException``, HTTP
409 from a REST catalog). Java Iceberg then refreshes the table and re-applies the change
(``commit.retry.num-retries``); pyiceberg does not, so its writers go through
:func:`commit_with_retries`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger(__name__)
T = TypeVar("T")

COMMIT_ATTEMPTS = 8
"""Attempts per change (Java Iceberg's default ``commit.retry.num-retries`` is 4; pyiceberg writers
here also re-read the table, so a few more keep several concurrent writers from running out)."""


def commit_with_retries(
    load: Callable[[], Table], change: Callable[[Table], T], *, attempts: int = COMMIT_ATTEMPTS,
    min_wait: float = 0.05, max_wait: float = 2.0,
) -> T:
    """Apply ``change`` to a freshly loaded table; on a commit conflict reload and re-apply it.

    :param load: loads the table's current metadata (called once per attempt).
    :param change: makes and commits the change on the table it is given; must be safe to repeat
        on newer metadata (an append, an overwrite by filter, a schema union).
    :returns: what ``change`` returned on the attempt that committed.
    """
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(1, attempts + 1):
        try:
            return change(load())
        except CommitFailedException:
            if attempt == attempts:
                raise
            wait = min(max_wait, min_wait * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.info("Iceberg commit conflict (attempt %d/%d); retrying on fresh metadata in %.2fs",
                     attempt, attempts, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
