"""Refuse requests for unusable model versions: decide which, then dead-letter them once across retries.

A request for a model version that does not exist (or whose inputs its feature table lacks or
holds as something other than numbers, :func:`warpspeed.models.probe.probe_models`) and that no
valid request supersedes is refused at
plan time: :func:`refusals` decides which (pure), :meth:`PlanRefusals.refuse` records and sends
them (:mod:`warpspeed.planning.service` calls it before planning). The order makes a retry of the
plan task lose nothing:

1. Write the window's refusal record (``refused.json``) with every refusal, ``dead_lettered:
   false`` for those not yet sent. A retry reads it first and refuses the same requests again,
   even if their version has appeared since (they may be in the DLQ already).
2. Send the unsent ones to the DLQ through :meth:`SqsIntakeHook.send_to_dead_letter`, with the
   attributes intake gives a refused message (``warpspeed_reasons``,
   ``warpspeed_source_message_id``, ``warpspeed_window_id``).
3. Mark them ``dead_lettered: true`` in the record.

A crash between 2 and 3 sends them once more on retry: the only duplicate possible, in the DLQ
only, with the same ``warpspeed_source_message_id`` (as for intake, docs/intake.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from warpspeed.intake.rules import HeldMessage
from warpspeed.intake.schema import ScoringRequest
from warpspeed.models.probe import Unavailable
from warpspeed.storage.documents import Storage

if TYPE_CHECKING:
    from warpspeed.hooks.sqs import SqsIntakeHook

__all__ = ["PlanRefusals", "Refusal", "refusals"]

SCHEMA = "warpspeed.refused/v1"


@dataclass(frozen=True)
class Refusal:
    """A request the plan task refuses: its version is unavailable and no valid request supersedes it."""

    request: ScoringRequest
    reason: str


def refusals(requests: Iterable[ScoringRequest], found: Iterable[Unavailable],
             already: Mapping[str, str] = MappingProxyType({})) -> list[Refusal]:
    """Return the requests the plan must refuse (to the DLQ), sorted by request id.

    A request for a version that is unavailable for good (``permanent``: missing, unusable,
    lacking inputs or reading non-numeric ones) is refused unless its (workload, tenant, model)
    has a request for a version not known to be unavailable, which supersedes it with a record
    (the planner's rule, :func:`warpspeed.models.probe.unavailable_pairs`), whatever the feature
    table's state. When the probe could not tell (the feature table or storage could not be
    read) nothing is refused: the batch decides. A request an earlier attempt refused
    (``already``: request id -> reason) stays refused: it is in the DLQ already.
    """
    reasons = {(u.workload, u.model, u.version): u.reason for u in found if u.permanent}
    requests = list(requests)
    available = {(r.workload, r.tenant_id, r.model) for r in requests
                 if (r.workload, r.model, r.model_version) not in reasons}
    out = []
    for r in requests:
        if r.request_id in already:
            out.append(Refusal(r, already[r.request_id]))
        elif (reason := reasons.get((r.workload, r.model, r.model_version))) and (
                (r.workload, r.tenant_id, r.model) not in available):
            out.append(Refusal(r, reason))
    return sorted(out, key=lambda x: x.request.request_id)


class PlanRefusals:
    """The refusal record of one window and the DLQ sends it tracks.

    :param hook: builds the SQS hook (only called when something must be sent).
    """

    def __init__(self, storage: Storage, record_uri: str, hook: Callable[[], SqsIntakeHook]) -> None:
        self.storage, self.record_uri, self.hook = storage, record_uri, hook

    def recorded(self) -> dict[str, dict[str, Any]]:
        """Return request id -> entry of every refusal an earlier attempt recorded."""
        if not self.storage.exists(self.record_uri):
            return {}
        return {e["request_id"]: e for e in json.loads(self.storage.read_text(self.record_uri))["refused"]}

    def refuse(self, window_id: str, dlq_url: Callable[[], str], requests: Sequence[ScoringRequest],
               unavailable: Sequence[Unavailable], sources: Mapping[str, str]) -> list[dict[str, Any]]:
        """Record, send and mark the refusals of ``requests``; return the record's entries (for the plan document).

        What is refused is :func:`refusals` of ``requests`` given the
        ``unavailable`` versions and what an earlier attempt recorded (still refused).

        :param dlq_url: the dead-letter queue's URL (only asked when something must be sent).
        :param sources: request id -> SQS message id that carried it (the intake manifest's);
            a request without one (carried over) is named ``request:<id>``.
        """
        entries = self.recorded()
        for f in refusals(requests, unavailable, {rid: e["reason"] for rid, e in entries.items()}):
            r = f.request
            entries.setdefault(r.request_id, {
                "request_id": r.request_id, "tenant_id": r.tenant_id, "workload": r.workload, "model": r.model,
                "model_version": r.model_version, "reason": f.reason,
                "source_message_id": sources.get(r.request_id, f"request:{r.request_id}"), "dead_lettered": False,
                "body": json.dumps(r.to_dict(), sort_keys=True),
            })
        unsent = [e for e in entries.values() if not e["dead_lettered"]]
        if unsent:
            self._write(window_id, entries)
            held = [HeldMessage(e["source_message_id"], "", e["body"], reasons=(e["reason"],)) for e in unsent]
            self.hook().send_to_dead_letter(dlq_url(), held, window_id)
            for e in unsent:
                e["dead_lettered"] = True
            self._write(window_id, entries)
        return [{k: v for k, v in e.items() if k != "body"} for _, e in sorted(entries.items())]

    def _write(self, window_id: str, entries: Mapping[str, Mapping[str, Any]]) -> None:
        doc = {"schema": SCHEMA, "window_id": window_id, "refused": [entries[k] for k in sorted(entries)]}
        self.storage.write_text(self.record_uri, json.dumps(doc, indent=1, sort_keys=True))
