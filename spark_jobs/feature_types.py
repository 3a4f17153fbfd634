"""The numeric-feature contract: the columns a model reads are numbers, checked one way everywhere.

A feature column of another type used to be scored differently by the two engines: Spark's
``cast("double")`` turned ``"abc"`` into null, scored with the imputed value, while Arrow's cast
failed the whole batch. Now the plan-time probe (``warpspeed.models.probe``) and both engines
(``spark_jobs.score_batch`` and ``spark_jobs.score_arrow``, through
:func:`spark_jobs.flavours.check_inputs`) refuse such a model version before anything is
scored, with the reason :func:`non_numeric_reason` words: at plan time its requests go to the
dead-letter queue like the plan's other refusals; in a job its members fail and the batch's
other members are scored.

A model reads numbers: integer, floating-point or decimal columns (:func:`is_numeric`). The
one exception is an input the model's own signature types otherwise (an MLflow signature's
``string``, ``boolean``...): the model asked for that type and gets the column as it is.

Type names come from three type systems, all read by :func:`is_numeric`: Spark SQL
(``DataType.simpleString()``: ``int``, ``bigint``, ``decimal(10,2)``), Iceberg (pyiceberg's
``str(type)``: ``int``, ``long``, ``decimal(10, 2)``) and Arrow (``int64``, ``halffloat``,
``decimal128(10, 2)``). Pure Python: the job and the provider import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["NUMERIC_SIGNATURE_TYPES", "is_numeric", "non_numeric", "non_numeric_reason"]

_NUMERIC = re.compile(
    r"(?:tiny|small|big)?int|integer|long|short|byte|u?int(?:8|16|32|64)|halffloat|float|double"
    r"|decimal(?:32|64|128|256)?\(\s*\d+\s*,\s*\d+\s*\)"
)
NUMERIC_SIGNATURE_TYPES = frozenset({"double", "float", "long", "integer"})
"""The MLflow column-signature types that are numbers (its others: string, boolean, binary, datetime)."""


def is_numeric(type_name: str) -> bool:
    """Tell whether a Spark SQL, Iceberg or Arrow type name is an integer, floating-point or decimal type."""
    return _NUMERIC.fullmatch(type_name.strip().lower()) is not None


def non_numeric(inputs: Iterable[str], types: Mapping[str, str],
                declared: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Return ``(column, type)`` of each input whose column is not numeric, in input order.

    :param types: column -> its type name (an input absent here is the missing-column check's).
    :param declared: input -> the type the model's own signature gives it; an input declared
        with a non-numeric type is the model's choice and is not reported.
    """
    declared = declared or {}
    out = []
    for name in dict.fromkeys(inputs):
        kind = types.get(name)
        if kind is None or is_numeric(kind):
            continue
        if name in declared and declared[name] not in NUMERIC_SIGNATURE_TYPES:
            continue
        out.append((name, kind))
    return out


def non_numeric_reason(model: str, version: str, table: str, found: Iterable[tuple[str, str]]) -> str:
    """Return the one reason (probe, Spark and Arrow alike) a version reading non-numeric columns is refused."""
    columns = ", ".join(f"{name} ({kind})" for name, kind in found)
    return f"model {model} {version} reads columns of {table} that are not numeric: {columns}"
