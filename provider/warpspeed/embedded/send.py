"""``warpspeed send``: put scoring requests on the queue, from flags or from a file.

From flags, one request per ``--tenant`` (same workload, model and version); from a file, JSON
lines or a JSON array of request documents (``request_id`` and ``requested_at`` filled in when
missing, ``schema_version`` 1 assumed). Each request is checked against the bundle's
``workloads.yaml`` first, as the collect task will check it, and nothing is sent if one fails
(``check=False`` sends them anyway: that is how to see the dead-letter queue at work).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.intake.schema import SCHEMA_VERSION, validate_message


def request_doc(workload: str, model: str, version: str, tenant: str, *, priority: str = "normal",
                accounts: int = 0, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return one scoring request document (schema v1) with a new request id, requested now."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "request_id": f"req-{uuid.uuid4()}", "tenant_id": tenant,
        "model": model, "model_version": version, "workload": workload, "priority": priority,
        "estimated_accounts": accounts, "requested_at": datetime.now(UTC).isoformat(),
    }
    if params:
        doc["params"] = dict(params)
    return doc


def docs_from_file(path: Path) -> list[dict[str, Any]]:
    """Return the request documents of a file: JSON lines, or one JSON array (missing ids and times filled in)."""
    text = path.read_text(encoding="utf-8")
    try:
        stripped = text.lstrip()
        raw = json.loads(stripped) if stripped.startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as err:
        raise WarpSpeedConfigError(f"{path}: not JSON lines nor a JSON array of requests: {err}") from None
    docs = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise WarpSpeedConfigError(f"{path}: request {i + 1} is not a JSON object")
        docs.append({"schema_version": SCHEMA_VERSION, "request_id": f"req-{uuid.uuid4()}",
                     "requested_at": datetime.now(UTC).isoformat(), **item})
    return docs


def refusals(docs: Sequence[Mapping[str, Any]], allowed_models: Mapping[str, Any]) -> list[str]:
    """Return why the collect task would refuse each refused document (``request i: reason; …``)."""
    found = []
    for i, doc in enumerate(docs):
        result = validate_message(json.dumps(doc), allowed_models=allowed_models)
        if result.request is None:
            found.append(f"request {i + 1} ({doc.get('tenant_id')}, {doc.get('model')}): {'; '.join(result.reasons)}")
    return found


def send_docs(client: Any, queue_url: str, docs: Sequence[Mapping[str, Any]]) -> int:
    """Send the documents to ``queue_url`` in batches of ten; return how many were sent."""
    return send_bodies(client, queue_url, [json.dumps(d) for d in docs])


def send_bodies(client: Any, queue_url: str, bodies: list[str]) -> int:
    """Send message bodies in batches of ten; return how many were sent."""
    sent = 0
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        resp = client.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
        )
        if resp.get("Failed"):
            raise RuntimeError(f"SQS refused {len(resp['Failed'])} messages: {resp['Failed']}")
        sent += len(resp.get("Successful", []))
    return sent

