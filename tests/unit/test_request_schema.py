from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpspeed.intake.schema import ScoringRequest, request_schema, validate_message

MODELS = {"scoring": frozenset({"churn_risk"}), "intent": frozenset({"intent_surge"})}


def valid_doc(**overrides: object) -> dict:
    doc = {
        "schema_version": 1,
        "request_id": "req-1",
        "tenant_id": "acme-01",
        "model": "churn_risk",
        "model_version": "v3",
        "workload": "scoring",
        "priority": "high",
        "estimated_accounts": 1200,
        "requested_at": "2026-11-20T21:00:00+00:00",
        "params": {"threshold": 0.4},
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def test_valid_message_becomes_a_request() -> None:
    result = validate_message(json.dumps(valid_doc()), allowed_models=MODELS)
    assert result.ok
    assert result.request == ScoringRequest.from_dict(valid_doc())
    assert result.request.params == {"threshold": 0.4}


def test_schema_file_is_shipped_and_versioned() -> None:
    schema = request_schema()
    assert schema["properties"]["schema_version"] == {"const": 1, "description": "Always 1 for this schema."}
    assert "tenant_id" in schema["required"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "unparseable JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps(valid_doc(schema_version=2)), "schema_version: 2 is not supported"),
        (json.dumps(valid_doc(tenant_id="Acme; DROP TABLE")), "tenant_id: 'Acme; DROP TABLE' does not match"),
        (json.dumps(valid_doc(tenant_id="../etc")), "tenant_id"),
        (json.dumps(valid_doc(request_id=None)), "'request_id' is a required property"),
        (json.dumps(valid_doc(estimated_accounts="many")), "estimated_accounts: 'many' is not of type 'integer'"),
        (json.dumps(valid_doc(workload="unknown")), "unknown workload 'unknown'"),
        (json.dumps(valid_doc(model="intent_surge")), "does not run model 'intent_surge'"),
        (json.dumps(valid_doc(requested_at="yesterday")), "not an RFC 3339 timestamp"),
        (json.dumps(valid_doc(requested_at="2026-11-20T21:00:00")), "has no UTC offset"),
        (json.dumps(valid_doc(extra_field=1)), "Additional properties are not allowed"),
    ],
)
def test_bad_messages_say_why(body: str, expected: str) -> None:
    result = validate_message(body, allowed_models=MODELS)
    assert not result.ok
    assert any(expected in reason for reason in result.reasons), result.reasons


def test_every_reason_is_reported() -> None:
    body = json.dumps(valid_doc(tenant_id="BAD!", model_version="3", priority="urgent"))
    reasons = validate_message(body, allowed_models=MODELS).reasons
    assert len(reasons) == 3, reasons
    assert [r.split(":")[0] for r in reasons] == ["model_version", "priority", "tenant_id"]


def test_oversized_body_and_poison_messages_are_refused() -> None:
    big = json.dumps(valid_doc(params={"blob": "x" * 70_000}))
    assert any("body too large" in r for r in validate_message(big, allowed_models=MODELS).reasons)
    poison = validate_message(json.dumps(valid_doc()), allowed_models=MODELS, receive_count=6, max_receives=5)
    assert poison.reasons == ("too many receives: 6 > 5",)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_fuzzed_bodies_never_crash_the_validator(body: str) -> None:
    result = validate_message(body, allowed_models=MODELS)
    assert result.ok == (result.request is not None)
    assert result.ok or result.reasons


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(sorted(valid_doc())),
    value=json_values,
)
def test_fuzzed_fields_are_either_valid_or_explained(field: str, value: object) -> None:
    doc = valid_doc()
    doc[field] = value
    result = validate_message(json.dumps(doc), allowed_models=MODELS)
    if result.ok:
        assert result.request is not None and result.request.request_id == doc["request_id"]
    else:
        assert result.reasons and all(isinstance(r, str) and r for r in result.reasons)


# -- issue 13: hostile input is refused with a reason, never raised ------------------------------

def nested(depth: int) -> dict:
    doc: dict = {}
    for _ in range(depth):
        doc = {"a": doc}
    return doc


def test_deeply_nested_params_are_refused_with_a_reason() -> None:
    """Issue 13 item 1: 500 levels of params passed and then broke the manifest write."""
    result = validate_message(json.dumps(valid_doc(params=nested(500))), allowed_models=MODELS)
    assert not result.ok
    assert any("params" in r and "deep" in r for r in result.reasons)


def test_nesting_anywhere_is_bounded_and_never_raises() -> None:
    deep: list = ["x"]
    for _ in range(40):
        deep = [deep]
    body = json.dumps(valid_doc(tenant_id=deep))
    result = validate_message(body, allowed_models=MODELS)
    assert not result.ok and any("deep" in r for r in result.reasons)


def test_large_params_are_refused_with_a_reason() -> None:
    result = validate_message(json.dumps(valid_doc(params={"blob": "x" * 20_000})), allowed_models=MODELS)
    assert not result.ok
    assert any("params" in r and "bytes" in r for r in result.reasons)


def test_reasons_are_bounded_whatever_the_input() -> None:
    result = validate_message(json.dumps(valid_doc(tenant_id="x" * 50_000)), allowed_models=MODELS)
    assert not result.ok and all(len(r) <= 500 for r in result.reasons)


@pytest.mark.parametrize("field_name", ["tenant_id", "request_id", "model", "model_version", "workload"])
def test_a_trailing_newline_fails_validation(field_name: str) -> None:
    """Issue 13 item 7: ``$`` matched before a final newline."""
    value = {"tenant_id": "acme", "request_id": "r1", "model": "churn_risk", "model_version": "v1",
             "workload": "scoring"}[field_name]
    result = validate_message(json.dumps(valid_doc(**{field_name: value + "\n"})), allowed_models=MODELS)
    assert not result.ok
    assert any(r.startswith(f"{field_name}:") for r in result.reasons)


def test_the_poison_check_fires_at_the_limit() -> None:
    """Issue 13 item 9: ``receive_count > limit`` never fired when the queue redrives at the limit."""
    result = validate_message(json.dumps(valid_doc()), allowed_models=MODELS, receive_count=5, max_receives=5)
    assert not result.ok and any("too many receives" in r for r in result.reasons)
    assert validate_message(json.dumps(valid_doc()), allowed_models=MODELS, receive_count=4, max_receives=5).ok


# -- issue 27: strict parsing: a key given twice and ISO 8601 forms that are not RFC 3339 are refused --------------

def test_a_key_given_twice_is_refused_with_every_other_reason() -> None:
    """json.loads kept the last value of a duplicated key: a producer's body could mean two things."""
    body = json.dumps(valid_doc(priority="urgent"))[:-1] + ', "tenant_id": "evil-01"}'
    result = validate_message(body, allowed_models=MODELS)
    assert not result.ok
    assert result.reasons == ("priority: 'urgent' is not one of ['high', 'normal', 'low']",
                              "tenant_id: duplicate key (JSON object keys must be unique)"), result.reasons


def test_a_key_given_twice_inside_params_is_named_by_its_path() -> None:
    body = json.dumps(valid_doc(params=None))[:-1] + ', "params": {"t": 0.4, "x": [{"k": 1, "k": 1}], "t": 0.9}}'
    result = validate_message(body, allowed_models=MODELS)
    assert result.reasons == ("params.t: duplicate key (JSON object keys must be unique)",
                              "params.x.0.k: duplicate key (JSON object keys must be unique)")


@pytest.mark.parametrize("stamp", [
    "2026-W47-5T21:00:00Z",  # ISO week date
    "20261120T210712Z",  # basic format
    "2026-11-20 21:07:12Z",  # a space for T
    "2026-11-20T21:07Z",  # no seconds
    "2026-11-20T21:07:12,5Z",  # a comma before the fraction
    "2026-11-20T21:07:12+0000",  # an offset without its colon
    "2026-11-20T21:07:12+00",  # hours-only offset
    "2026-11-20T21:07:12z",  # lower-case Z, which the planner's fromisoformat cannot read
    "2026-13-20T21:07:12Z",  # month 13
])
def test_requested_at_is_rfc_3339_only(stamp: str) -> None:
    result = validate_message(json.dumps(valid_doc(requested_at=stamp)), allowed_models=MODELS)
    assert result.reasons == (f"requested_at: {stamp!r} is not an RFC 3339 timestamp (e.g. 2026-11-20T21:07:12Z)",)


@pytest.mark.parametrize("stamp", ["2026-11-20T21:07:12Z", "2026-11-20T21:07:12.123456-05:30",
                                   "2026-11-20T21:07:12.5+00:00"])
def test_rfc_3339_timestamps_pass(stamp: str) -> None:
    result = validate_message(json.dumps(valid_doc(requested_at=stamp)), allowed_models=MODELS)
    assert result.ok and result.request is not None and result.request.requested_at == stamp
