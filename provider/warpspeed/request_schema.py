"""Scoring request schema v1: parse a queue message and return every reason it is bad."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_VERSION = 1
MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_RECEIVES = 5
PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}


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


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(request_schema())


def _schema_reasons(doc: Mapping[str, Any]) -> list[str]:
    reasons = []
    for err in sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "message"
        reasons.append(f"{where}: {err.message}")
    return reasons


def _timestamp_reason(value: Any) -> str | None:
    if not isinstance(value, str):
        return None  # the schema already reports the type
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return f"requested_at: {value!r} is not an RFC 3339 timestamp"
    if parsed.tzinfo is None:
        return f"requested_at: {value!r} has no UTC offset"
    return None


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
    :param max_receives: receives after which a message is refused as a poison message.
    :param max_body_bytes: largest accepted body.
    """
    reasons: list[str] = []
    if receive_count > max_receives:
        reasons.append(f"too many receives: {receive_count} > {max_receives}")
    size = len(body.encode("utf-8", errors="replace"))
    if size > max_body_bytes:
        return ValidationResult(None, (*reasons, f"body too large: {size} bytes > {max_body_bytes}"))
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:
        return ValidationResult(None, (*reasons, f"unparseable JSON: {err}"))
    if not isinstance(doc, dict):
        return ValidationResult(None, (*reasons, f"message: expected a JSON object, got {type(doc).__name__}"))
    if "schema_version" in doc and doc["schema_version"] != SCHEMA_VERSION:
        reasons.append(f"schema_version: {doc['schema_version']!r} is not supported (expected {SCHEMA_VERSION})")
        return ValidationResult(None, tuple(reasons))
    reasons.extend(_schema_reasons(doc))
    if (ts_reason := _timestamp_reason(doc.get("requested_at"))) is not None:
        reasons.append(ts_reason)
    workload, model = doc.get("workload"), doc.get("model")
    if isinstance(workload, str) and workload not in allowed_models:
        known = ", ".join(sorted(allowed_models)) or "none configured"
        reasons.append(f"workload: unknown workload {workload!r} (known: {known})")
    elif isinstance(workload, str) and isinstance(model, str) and model not in allowed_models[workload]:
        reasons.append(f"model: workload {workload!r} does not run model {model!r}")
    if reasons:
        return ValidationResult(None, tuple(reasons))
    return ValidationResult(ScoringRequest.from_dict(doc))
