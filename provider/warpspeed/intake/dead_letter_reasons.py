"""Why a valid request may end in the dead-letter queue: every documented reason, in one place.

A request the schema accepts reaches the DLQ for two documented causes only:

* intake's poison rule (docs/intake.md, G9): its message was received ``max_receives`` times,
  ``too many receives: N >= M`` (:func:`warpspeed.intake.schema.validate_message`);
* the plan task's refusal (docs/scoring.md, "A version that is missing or does not fit"): its
  model version is unusable for good and no request for a usable one supersedes it
  (:func:`warpspeed.models.probe.probe_models`, :mod:`warpspeed.planning.refusals`), a refusal
  the window's plan document also lists under ``refused``.

Anything else that dead-letters a valid request is a failure: the soak's auditor
(:mod:`warpspeed.embedded.soak.audit`) counts such a request as lost. The patterns below follow
the reasons intake and the probe write; ``tests/unit/test_soak_audit.py`` checks the real ones
against them, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["INTAKE", "PLAN", "VALID_REQUEST_REASONS", "DocumentedReason", "documented_reason"]

INTAKE, PLAN = "intake", "plan"
_VERSION = r"model [a-z][a-z0-9_]* v[0-9]+"


@dataclass(frozen=True)
class DocumentedReason:
    """One documented reason a valid request may be dead-lettered with.

    :param stage: ``intake`` or ``plan`` (a plan refusal is also in the plan document's ``refused``).
    :param pattern: matched at the start of one reason.
    :param doc: where the behaviour is documented.
    """

    name: str
    stage: str
    pattern: re.Pattern[str]
    doc: str


VALID_REQUEST_REASONS: tuple[DocumentedReason, ...] = (
    DocumentedReason("too_many_receives", INTAKE, re.compile(r"too many receives\b"), "docs/intake.md, G9"),
    DocumentedReason("version_not_found", PLAN, re.compile(rf"{_VERSION} not found at \S"),
                     "docs/scoring.md, A version that is missing or does not fit"),
    DocumentedReason("version_unusable", PLAN, re.compile(rf"{_VERSION} at \S+ is unusable: "),
                     "docs/scoring.md, A version that is missing or does not fit"),
    DocumentedReason("inputs_missing", PLAN, re.compile(rf"{_VERSION} needs columns \[.+\] that \S+ lacks"),
                     "docs/scoring.md, A version that is missing or does not fit"),
    DocumentedReason("inputs_not_numeric", PLAN, re.compile(rf"{_VERSION} reads columns of \S+ that are not numeric: "),
                     "docs/scoring.md, Features are numbers"),
)


def documented_reason(reasons: str) -> DocumentedReason | None:
    """Return the documented reason a DLQ message's ``warpspeed_reasons`` attribute gives, or None.

    Intake joins several reasons with `` | ``; the attribute is documented only when every one
    of them is, and all of one stage (a valid request has one cause). Blank is never documented.
    """
    found: list[DocumentedReason] = []
    for part in (p.strip() for p in reasons.split(" | ")):
        match = next((d for d in VALID_REQUEST_REASONS if d.pattern.match(part)), None)
        if match is None:
            return None
        found.append(match)
    return found[0] if found and len({d.stage for d in found}) == 1 else None
