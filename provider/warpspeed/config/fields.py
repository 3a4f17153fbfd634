"""Check a number read from a config file: the one rule every config dataclass uses (pure).

YAML gives a number field whatever was written: ``true`` (a bool is an int in Python), a quoted
``"4"``, ``.nan`` or ``.inf``. :func:`integer` and :func:`number` refuse those and values below
the field's bound, with a message naming the field, the bound and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from warpspeed.exceptions import WarpSpeedConfigError

V = TypeVar("V")


def _refuse(field: str, rule: str, value: Any, why: str = "") -> WarpSpeedConfigError:
    return WarpSpeedConfigError(f"{field} must be {rule}{f' ({why})' if why else ''}, got {value!r}")


def integer(field: str, value: Any, *, least: int | None = 1, why: str = "") -> int:
    """Return ``value`` if it is an integer (not a bool) of at least ``least`` (``None``: any).

    :param field: the field's path in its file, e.g. ``planning.rows_cap``.
    :param why: why the bound is what it is, added to its message, e.g. ``one file is whole``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(field, "an integer", value)
    if least is not None and value < least:
        rule = {0: "zero or more", 1: "positive"}.get(least, f"at least {least}")
        raise _refuse(field, rule, value, why)
    return value


def named(choices: Mapping[str, V], name: str, unknown: str, *, listed: str = "configured") -> V:
    """Return ``choices[name]``; else raise ``<unknown>; <listed>: <every name, sorted>``.

    The one lookup of a name a user wrote (a workload, a cluster profile, an instance type, a raw
    source): a wrong one is refused with the names there are.

    :param unknown: what was not found, e.g. ``unknown workload 'x'``.
    """
    try:
        return choices[name]
    except KeyError:
        raise WarpSpeedConfigError(f"{unknown}; {listed}: {', '.join(sorted(choices))}") from None


def number(field: str, value: Any, *, positive: bool = False, why: str = "") -> float:
    """Return ``value`` as a float if it is a finite number (not a bool), zero or more (above zero if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(field, "a number", value)
    if value < 0 or (positive and value == 0):
        raise _refuse(field, "positive" if positive else "zero or more", value, why)
    return float(value)
