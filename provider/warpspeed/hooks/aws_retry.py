"""How every AWS control-plane call survives throttling: botocore's retry config plus full-jitter backoff.

Pure helpers (no Airflow): the EMR hook, the cluster pool and the step trigger share them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from warpspeed.exceptions import WarpSpeedConfigError

THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestThrottled",
    }
)


def retry_config(mode: str = "adaptive", max_attempts: int = 8) -> Config:
    """Return the botocore client config every EMR call goes through.

    ``adaptive`` adds client-side rate limiting on top of ``standard`` retries (exponential
    backoff with jitter on throttling and transient errors).
    """
    if mode not in ("adaptive", "standard", "legacy"):
        raise WarpSpeedConfigError(f"retry mode {mode!r} must be adaptive, standard or legacy")
    retries: Any = {"mode": mode, "total_max_attempts": max_attempts}
    return Config(retries=retries, connect_timeout=10, read_timeout=60)


def is_throttle(err: BaseException) -> bool:
    """Tell whether ``err`` is an AWS throttling error."""
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in THROTTLE_CODES


def backoff_delay(
    attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Return a full-jitter exponential backoff delay for retry number ``attempt`` (0-based)."""
    return (rng or random).uniform(0, min(cap, base * 2**attempt))


def call_with_backoff(
    fn: Callable[..., Any],
    *,
    attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
    on_throttle: Callable[[int, float], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``fn(**kwargs)``, retrying throttling errors with full-jitter backoff."""
    for attempt in range(attempts):
        try:
            return fn(**kwargs)
        except ClientError as err:
            if not is_throttle(err) or attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt)
            if on_throttle:
                on_throttle(attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def next_poll_delay(polls: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Return the wait before poll number ``polls + 1``: growing by 1.5x, capped, +-20% jitter."""
    return min(cap, base * 1.5**polls) * (rng or random).uniform(0.8, 1.2)
