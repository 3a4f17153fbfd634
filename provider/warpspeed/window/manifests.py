"""Documents that carry a window's work between tasks: intake, plan, batch and summary.

XCom carries only their URIs. Layout under the storage prefix::

    models/<model>/<version>.json
    windows/<window_id>/intake.json
    windows/<window_id>/plan.json
    windows/<window_id>/batches/<batch_id>.json
    windows/<window_id>/results/<batch_id>.json
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from warpspeed.exceptions import ManifestError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.storage.documents import join_uri

INTAKE_SCHEMA = "warpspeed.intake/v1"
BATCH_SCHEMA = "warpspeed.batch/v1"
PLAN_SCHEMA = "warpspeed.plan/v1"
RUN_SCHEMA = "warpspeed.batch_run/v1"


def window_id_for(window_start: datetime) -> str:
    """Return the id of the window that starts at ``window_start``, e.g. ``20261120T2100Z``."""
    if window_start.tzinfo is None:
        raise ValueError("window_start must be timezone-aware")
    return window_start.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


@dataclass(frozen=True)
class WindowLayout:
    """Where one window's documents live."""

    storage_prefix: str
    window_id: str

    @property
    def root(self) -> str:
        """Return the window's folder."""
        return join_uri(self.storage_prefix, "windows", self.window_id)

    @property
    def intake_uri(self) -> str:
        """Return the intake manifest's URI."""
        return join_uri(self.root, "intake.json")

    @property
    def plan_uri(self) -> str:
        """Return the plan document's URI."""
        return join_uri(self.root, "plan.json")

    @property
    def refused_uri(self) -> str:
        """Return the record of requests the plan task refused to the DLQ (written before the send)."""
        return join_uri(self.root, "refused.json")

    @property
    def batches_folder(self) -> str:
        """Return the folder of the batch manifests (one dataset for lineage)."""
        return join_uri(self.root, "batches")

    @property
    def runs_folder(self) -> str:
        """Return the folder of the batch run records (one dataset for lineage)."""
        return join_uri(self.root, "runs")

    def batch_uri(self, batch_id: str) -> str:
        """Return a batch manifest's URI."""
        return join_uri(self.batches_folder, f"{batch_id}.json")

    def summary_uri(self, batch_id: str) -> str:
        """Return a batch result summary's URI (written by the Spark job)."""
        return join_uri(self.root, "results", f"{batch_id}.json")

    def run_uri(self, batch_id: str) -> str:
        """Return a batch run record's URI (written by the score task)."""
        return join_uri(self.runs_folder, f"{batch_id}.json")


def models_uri(storage_prefix: str) -> str:
    """Return the model registry's root."""
    return join_uri(storage_prefix, "models")


@dataclass(frozen=True)
class RejectedMessage:
    """A message refused at intake, with every reason."""

    message_id: str
    reasons: tuple[str, ...]
    body_excerpt: str = ""
    dead_lettered: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest representation."""
        return {"message_id": self.message_id, "reasons": list(self.reasons), "body_excerpt": self.body_excerpt,
                "dead_lettered": self.dead_lettered}


@dataclass(frozen=True)
class DuplicateMessage:
    """A valid message that is not scored because its request id is already owned.

    ``window_id`` is the window whose manifest owns the id (this window for a second copy in
    the same window, an earlier one for a redelivered or re-sent id).
    """

    message_id: str
    request_id: str
    window_id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest representation."""
        return {"message_id": self.message_id, "request_id": self.request_id, "window_id": self.window_id,
                "reason": self.reason}


@dataclass(frozen=True)
class IntakeManifest:
    """Every valid request of a window (unique by request id) and every refused message.

    ``duplicates`` records each message not scored because its request id was already owned;
    ``sources`` maps a request id to the message that carried it; ``pending_receipts`` maps the
    message id of each message a collect still has to delete to its receipt handle (a retry
    deletes them first, see :mod:`warpspeed.intake.service`); it is empty once the collect
    finished.
    """

    window_id: str
    requests: tuple[ScoringRequest, ...] = ()
    rejected: tuple[RejectedMessage, ...] = ()
    attempts: int = 0
    duplicates: tuple[DuplicateMessage, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    pending_receipts: Mapping[str, str] = field(default_factory=dict)

    def merged(
        self,
        requests: Iterable[ScoringRequest],
        rejected: Iterable[RejectedMessage],
        duplicates: Iterable[DuplicateMessage] = (),
        sources: Mapping[str, str] | None = None,
    ) -> IntakeManifest:
        """Return this manifest plus new entries; a request id already present is kept as is."""
        by_id = {r.request_id: r for r in self.requests}
        for req in requests:
            by_id.setdefault(req.request_id, req)
        rejected_by_id = {r.message_id: r for r in self.rejected}
        for rej in rejected:
            rejected_by_id.setdefault(rej.message_id, rej)
        dup_by_id = {d.message_id: d for d in self.duplicates}
        for dup in duplicates:
            dup_by_id.setdefault(dup.message_id, dup)
        return replace(
            self,
            requests=tuple(sorted(by_id.values(), key=lambda r: r.request_id)),
            rejected=tuple(sorted(rejected_by_id.values(), key=lambda r: r.message_id)),
            attempts=self.attempts + 1,
            duplicates=tuple(sorted(dup_by_id.values(), key=lambda d: d.message_id)),
            sources={k: v for k, v in ({**(sources or {}), **self.sources}).items() if k in by_id},
        )

    def moved_to_duplicates(self, duplicates: Iterable[DuplicateMessage]) -> IntakeManifest:
        """Return this manifest with the requests of ``duplicates`` moved from its requests to its duplicates."""
        moved = {d.message_id: d for d in duplicates}
        if not moved:
            return self
        ids = {d.request_id for d in moved.values()}
        dups = {d.message_id: d for d in self.duplicates} | moved
        return replace(
            self,
            requests=tuple(r for r in self.requests if r.request_id not in ids),
            duplicates=tuple(sorted(dups.values(), key=lambda d: d.message_id)),
            sources={k: v for k, v in self.sources.items() if k not in ids},
        )

    def with_pending_receipts(self, receipts: Mapping[str, str]) -> IntakeManifest:
        """Return this manifest with the receipt handles still to delete (message id -> handle)."""
        return replace(self, pending_receipts=dict(receipts))

    def with_dead_lettered(self, message_ids: Iterable[str]) -> IntakeManifest:
        """Return this manifest with these rejected messages marked as sent to the DLQ."""
        ids = set(message_ids)
        return replace(
            self,
            rejected=tuple(replace(r, dead_lettered=True) if r.message_id in ids else r for r in self.rejected),
        )

    def dead_lettered_ids(self) -> frozenset[str]:
        """Return the ids of rejected messages the DLQ already holds."""
        return frozenset(r.message_id for r in self.rejected if r.dead_lettered)

    def to_json(self) -> str:
        """Serialise deterministically."""
        return json.dumps(
            {
                "schema": INTAKE_SCHEMA,
                "window_id": self.window_id,
                "attempts": self.attempts,
                "requests": [r.to_dict() for r in self.requests],
                "rejected": [r.to_dict() for r in self.rejected],
                "duplicates": [d.to_dict() for d in self.duplicates],
                "sources": dict(self.sources),
                "pending_receipts": dict(self.pending_receipts),
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> IntakeManifest:
        """Parse a manifest written by :meth:`to_json`."""
        doc = load_document(text, INTAKE_SCHEMA)
        return cls(
            window_id=doc["window_id"],
            requests=tuple(ScoringRequest.from_dict(r) for r in doc["requests"]),
            rejected=tuple(
                RejectedMessage(r["message_id"], tuple(r["reasons"]), r.get("body_excerpt", ""),
                                bool(r.get("dead_lettered", False)))
                for r in doc["rejected"]
            ),
            attempts=int(doc.get("attempts", 0)),
            duplicates=tuple(
                DuplicateMessage(d["message_id"], d["request_id"], d["window_id"], d["reason"])
                for d in doc.get("duplicates", [])
            ),
            sources=dict(doc.get("sources") or {}),
            pending_receipts=dict(doc.get("pending_receipts") or {}),
        )


@dataclass(frozen=True)
class BatchManifest:
    """Everything one Spark scoring run needs; read by ``spark_jobs/score_batch.py``."""

    batch_id: str
    window_id: str
    workload: str
    members: tuple[ScoringRequest, ...]
    estimated_rows: int
    models_uri: str
    summary_uri: str
    features_table: str = "features.account_features"
    scores_table: str = "scores.account_scores"
    extra: Mapping[str, Any] = field(default_factory=dict)
    entity_key: tuple[str, ...] = ("account_id",)
    tenant_column: str = "tenant_id"
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Model name -> ``{flavour, uri, output_column, output_index, inputs}`` (the job fills
    ``{version}``/``{version_number}`` in ``uri``); a model absent here is an expression model
    at ``<models_uri>/<model>/<version>.json``."""
    engine: str = "spark"
    """``spark`` (``score_batch.py``) or ``arrow`` (``score_arrow.py``, the single-node engine for
    small batches); chosen by the planner (:mod:`warpspeed.planning.routing`)."""

    @property
    def tenants(self) -> tuple[str, ...]:
        """Return the batch's tenants, sorted."""
        return tuple(sorted({m.tenant_id for m in self.members}))

    def to_json(self) -> str:
        """Serialise deterministically."""
        return json.dumps(
            {
                "schema": BATCH_SCHEMA,
                "batch_id": self.batch_id,
                "window_id": self.window_id,
                "workload": self.workload,
                "estimated_rows": self.estimated_rows,
                "models_uri": self.models_uri,
                "summary_uri": self.summary_uri,
                "features_table": self.features_table,
                "scores_table": self.scores_table,
                "entity_key": list(self.entity_key),
                "tenant_column": self.tenant_column,
                "models": {k: dict(v) for k, v in self.models.items()},
                "engine": self.engine,
                "members": [m.to_dict() for m in self.members],
                "extra": dict(self.extra),
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> BatchManifest:
        """Parse a manifest written by :meth:`to_json`."""
        doc = load_document(text, BATCH_SCHEMA)
        return cls(
            batch_id=doc["batch_id"],
            window_id=doc["window_id"],
            workload=doc["workload"],
            members=tuple(ScoringRequest.from_dict(m) for m in doc["members"]),
            estimated_rows=int(doc["estimated_rows"]),
            models_uri=doc["models_uri"],
            summary_uri=doc["summary_uri"],
            features_table=doc["features_table"],
            scores_table=doc["scores_table"],
            extra=doc.get("extra") or {},
            entity_key=tuple(doc.get("entity_key") or ("account_id",)),
            tenant_column=doc.get("tenant_column") or "tenant_id",
            models=doc.get("models") or {},
            engine=_engine(doc.get("engine") or "spark"),
        )


def _engine(value: Any) -> str:
    if value not in ("spark", "arrow"):
        raise ManifestError(f"batch manifest engine must be 'spark' or 'arrow', got {value!r}")
    return str(value)


def load_document(text: str, schema: str, source: str | None = None) -> dict[str, Any]:
    """Parse a Warp Speed JSON document and check its ``schema``; errors name ``source`` if given."""
    where = f"{source}: " if source else ""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ManifestError(f"{where}not a JSON document: {err}") from err
    if not isinstance(doc, Mapping) or doc.get("schema") != schema:
        found = doc.get("schema") if isinstance(doc, Mapping) else type(doc).__name__
        raise ManifestError(f"{where}expected a {schema} document, found {found!r}")
    return dict(doc)


@dataclass(frozen=True)
class BatchRun:
    """Where and how one batch ran; the publish task turns it into a ledger row."""

    batch_id: str
    window_id: str
    workload: str
    batch_manifest_uri: str
    summary_uri: str
    backend: str
    cluster_id: str
    cluster_created: bool
    state: str
    started_at: str
    finished_at: str
    run_seconds: float
    log_uri: str | None = None
    reason: str | None = None

    def to_json(self) -> str:
        """Serialise deterministically."""
        doc = {"schema": RUN_SCHEMA} | {k: getattr(self, k) for k in self.__dataclass_fields__}
        return json.dumps(doc, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BatchRun:
        """Parse a record written by :meth:`to_json`."""
        doc = load_document(text, RUN_SCHEMA)
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})
