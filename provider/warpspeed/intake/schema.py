"""Scoring request schema v1: parse a queue message and return every reason it is bad."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_VERSION = 1
MAX_BODY_BYTES = 64 * 1024
#: Receives at which the app dead-letters a message itself, with a reason. It must stay below the
#: queue's ``maxReceiveCount`` (5 on the demo queue) so the app fires before SQS's redrive, which
#: moves a message without any reason (checked at collect, see ``SqsIntakeHook.check_redrive``).
DEFAULT_MAX_RECEIVES = 4
#: Deepest nesting of arrays/objects accepted anywhere in a message (the top object is level 1).
MAX_DEPTH = 16
#: Largest ``params`` accepted, as compact JSON; what the app writes per request stays bounded.
MAX_PARAMS_BYTES = 8 * 1024
#: Longest reason kept; reasons echo producer input and go into manifests and DLQ attributes.
MAX_REASON_CHARS = 500
PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}
#: RFC 3339 ``date-time`` (section 5.6) with ``T`` and ``Z`` in upper case, as the planner's
#: :func:`datetime.fromisoformat` reads them; the offset is optional here only so that its absence
#: gets a reason of its own.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)


@dataclass(frozen=True, order=True)
class ScoringRequest:
    """A valid scoring request, as written to the intake manifest."""

    request_id: str
    tenant_id: str
    model: str
    model_version: str
    workload: str
    requested_at: str
    priority: str = "normal"
    estimated_accounts: int = 0
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest representation."""
        out = asdict(self)
        out["params"] = dict(self.params)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoringRequest:
        """Rebuild a request from its manifest representation."""
        return cls(
            request_id=data["request_id"],
            tenant_id=data["tenant_id"],
            model=data["model"],
            model_version=data["model_version"],
            workload=data["workload"],
            requested_at=data["requested_at"],
            priority=data.get("priority", "normal"),
            estimated_accounts=int(data.get("estimated_accounts", 0)),
            params=dict(data.get("params") or {}),
        )

    @property
    def requested_at_dt(self) -> datetime:
        """Return ``requested_at`` as an aware datetime."""
        return datetime.fromisoformat(self.requested_at)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one message: a request, or the reasons it was refused."""

    request: ScoringRequest | None
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Tell whether the message is a valid request."""
        return self.request is not None


@cache
def request_schema() -> dict[str, Any]:
    """Return the JSON Schema document shipped with the package."""
    text = resources.files("warpspeed").joinpath("schemas/scoring_request.v1.json").read_text("utf-8")
    return dict(json.loads(text))


def _anchored_pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    """Check ``pattern`` with ECMA-262 semantics for a final ``$``: the end of the string.

    Python's ``$`` also matches before a trailing newline, so ``"acme\n"`` passed ``^...$``.
    """
    from jsonschema import ValidationError

    if not validator.is_type(instance, "string"):
        return
    strict = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if re.search(strict, instance) is None:
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    strict = validators.extend(Draft202012Validator, {"pattern": _anchored_pattern})
    return strict(request_schema())


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)  # safe: called only once nesting is known to be bounded
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _bounded(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def _schema_reasons(doc: Mapping[str, Any]) -> list[str]:
    reasons = []
    for err in sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "message"
        reasons.append(_bounded(f"{where}: {err.message}"))
    return reasons


def nesting_depth(value: Any, limit: int) -> int:
    """Return how deep arrays/objects nest in ``value``, counting at most to ``limit + 1``.

    Iterative, so no input can raise ``RecursionError``; stops as soon as ``limit`` is passed.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _bound_reasons(doc: Mapping[str, Any]) -> list[str]:
    """Return why ``doc`` is too deep or its ``params`` too large (what the app writes is bounded)."""
    if nesting_depth(doc, MAX_DEPTH) > MAX_DEPTH:
        deepest = max(((k, nesting_depth(v, MAX_DEPTH)) for k, v in doc.items()), key=lambda kv: kv[1])[0]
        return [f"{deepest}: nests deeper than {MAX_DEPTH} levels"]
    params = doc.get("params")
    if isinstance(params, dict):
        size = len(json.dumps(params, separators=(",", ":")).encode("utf-8", errors="replace"))
        if size > MAX_PARAMS_BYTES:
            return [f"params: {size} bytes as JSON > {MAX_PARAMS_BYTES}"]
    return []


def _timestamp_reason(value: Any) -> str | None:
    """Return why ``value`` is not an RFC 3339 timestamp with a UTC offset, or None.

    :func:`datetime.fromisoformat` alone accepts much more of ISO 8601 (week dates like
    ``2026-W47-5``, the basic format ``20261120T210712Z``, a space for ``T``, minutes only, a
    comma before the fraction, ``+0000``), so the form is matched first (:data:`_RFC3339`, upper
    case ``T`` and ``Z``), then the values are checked (month 13, hour 25).
    """
    if not isinstance(value, str):
        return None  # the schema already reports the type
    form = _RFC3339.fullmatch(value)
    try:
        parsed = datetime.fromisoformat(value) if form else None
    except ValueError:
        parsed = None
    if parsed is None:
        return f"requested_at: {_short(value)} is not an RFC 3339 timestamp (e.g. 2026-11-20T21:07:12Z)"
    if form is not None and form["offset"] is None:
        return f"requested_at: {_short(value)} has no UTC offset"
    return None


class _JsonObject(dict[str, Any]):
    """A parsed JSON object that remembers the keys its text gave more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    """``object_pairs_hook`` of :func:`_parse`: keep the last value, as json does, and note duplicates."""
    obj = _JsonObject(pairs)
    if len(obj) != len(pairs):
        obj.duplicates = tuple(sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1))
    return obj


def _duplicate_key_reasons(doc: Any) -> list[str]:
    """Return a reason per key given twice in any object of ``doc``, named by its path.

    Run after :func:`_bound_reasons`, so the walk is at most :data:`MAX_DEPTH` deep.
    """
    reasons = []
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _JsonObject):
            reasons += [_bounded(f"{path}{key}: duplicate key (JSON object keys must be unique)")
                        for key in item.duplicates]
        if isinstance(item, dict):
            stack.extend((f"{path}{k}.", v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}{i}.", v) for i, v in enumerate(item))
    return sorted(reasons)


def _parse(body: str, max_body_bytes: int) -> tuple[dict[str, Any] | None, str]:
    """Return the body's JSON object, or None and why it is not one."""
    size = len(body.encode("utf-8", errors="replace"))
    if size > max_body_bytes:
        return None, f"body too large: {size} bytes > {max_body_bytes}"
    try:
        doc = json.loads(body, object_pairs_hook=_object)
    except (ValueError, RecursionError) as err:
        return None, _bounded(f"unparseable JSON: {err}")
    if not isinstance(doc, dict):
        return None, f"message: expected a JSON object, got {type(doc).__name__}"
    return doc, ""


def validate_message(
    body: str,
    *,
    allowed_models: Mapping[str, Collection[str]],
    receive_count: int = 1,
    max_receives: int = DEFAULT_MAX_RECEIVES,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ValidationResult:
    """Validate one message body and return the request or every reason it is refused.

    :param body: the raw SQS message body.
    :param allowed_models: workload name -> models that workload runs (from workloads.yaml).
    :param receive_count: SQS ``ApproximateReceiveCount`` of the message.
    :param max_receives: receive count at which a message is refused as a poison message.
    :param max_body_bytes: largest accepted body.
    """
    reasons: list[str] = []
    if receive_count >= max_receives:
        sign = ">" if receive_count > max_receives else ">="
        reasons.append(f"too many receives: {receive_count} {sign} {max_receives}")
    doc, why = _parse(body, max_body_bytes)
    if doc is None:
        return ValidationResult(None, (*reasons, why))
    if bound := _bound_reasons(doc):
        return ValidationResult(None, (*reasons, *bound))
    if "schema_version" in doc and doc["schema_version"] != SCHEMA_VERSION:
        reasons.append(_bounded(f"schema_version: {_short(doc['schema_version'])} is not supported "
                                f"(expected {SCHEMA_VERSION})"))
        return ValidationResult(None, tuple(reasons))
    reasons.extend(_schema_reasons(doc))
    reasons.extend(_duplicate_key_reasons(doc))
    if (ts_reason := _timestamp_reason(doc.get("requested_at"))) is not None:
        reasons.append(ts_reason)
    workload, model = doc.get("workload"), doc.get("model")
    if isinstance(workload, str) and workload not in allowed_models:
        known = ", ".join(sorted(allowed_models)) or "none configured"
        reasons.append(_bounded(f"workload: unknown workload {_short(workload)} (known: {known})"))
    elif isinstance(workload, str) and isinstance(model, str) and model not in allowed_models[workload]:
        reasons.append(_bounded(f"model: workload {workload!r} does not run model {_short(model)}"))
    if reasons:
        return ValidationResult(None, tuple(reasons))
    return ValidationResult(ScoringRequest.from_dict(doc))
