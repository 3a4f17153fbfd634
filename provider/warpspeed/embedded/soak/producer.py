"""The soak's producer: valid requests, producer duplicates and hostile messages, all recorded.

Every message sent is one line of ``sent.jsonl`` (:class:`SentMessage`): its SQS message id, the
request id it carries (if any), its kind and the outcome the auditor must find for it.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warpspeed.embedded.seed import accounts_for
from warpspeed.intake.rules import SQS_MAX_PAYLOAD

MODELS = (("scoring", "churn_risk"), ("scoring", "upsell_propensity"), ("intent", "intent_surge"))
EXPECT_REQUEST = "request"  # scored once, or superseded with a record
EXPECT_DUPLICATE = "duplicate"  # a re-sent request id: never scored a second time
EXPECT_DEAD_LETTER = "dead_letter"  # refused: in the DLQ with its reasons

INTAKE_REFUSED_KINDS = (
    "deep_nesting", "deep_params", "huge_body", "wide_params", "trailing_newline", "bad_model_version",
    "bad_schema_version", "unknown_model", "unknown_workload", "non_json", "not_an_object", "bad_timestamp",
)
#: Well-formed, so intake collects it; the plan task refuses it to the DLQ with its reason (the
#: version does not exist) unless a valid request for its (tenant, model) supersedes it.
PLAN_REFUSED_KINDS = ("unknown_version",)
HOSTILE_KINDS = INTAKE_REFUSED_KINDS + PLAN_REFUSED_KINDS
UNKNOWN_VERSION = "v999"


@dataclass(frozen=True)
class SentMessage:
    """One message the producer sent, and what must become of it."""

    message_id: str
    kind: str
    expect: str
    request_id: str | None = None
    tenant_id: str | None = None
    model: str | None = None
    requested_at: str | None = None
    sent_at: str = ""

    def to_json(self) -> str:
        """Serialise as one line."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> SentMessage:
        """Parse a line written by :meth:`to_json`."""
        return cls(**json.loads(line))


@dataclass(frozen=True)
class SoakLoad:
    """What the soak producer sends.

    :param requests: valid requests in total (each with a new request id).
    :param windows: one-minute windows the load is spread over.
    :param hostile_share: hostile messages per valid request (at least 0.05).
    :param duplicate_share: producer re-sends per valid request (at least 0.05), half of them
        of an id sent in an earlier window.
    :param chunks_per_window: sends per window.
    :param tenants: tenants seeded (feature rows) and requested; with the three models, ``3 x
        tenants`` (tenant, model) pairs, more than a window's requests, so most are distinct
        pairs and get scored rather than superseded.
    :param accounts_base: fewest accounts a seeded tenant has (small tables keep seeding quick).
    :param accounts_spread: a tenant has ``accounts_base`` to ``accounts_base + spread - 1`` accounts.
    :param repeat_share: share of valid requests that ask again for a pair already asked for in
        the same send, so same-pair supersession stays in the mix.
    """

    requests: int = 5000
    windows: int = 10
    hostile_share: float = 0.06
    duplicate_share: float = 0.06
    chunks_per_window: int = 6
    seed: int = 13
    tenants: int = 400
    accounts_base: int = 20
    accounts_spread: int = 40
    repeat_share: float = 0.05

    def __post_init__(self) -> None:
        if self.windows < 1 or self.requests < self.windows or self.chunks_per_window < 1:
            raise ValueError(f"soak load needs requests >= windows >= 1 and chunks >= 1: {self}")

    @property
    def chunks(self) -> int:
        """Return how many sends the whole load takes."""
        return self.windows * self.chunks_per_window


def hostile_body(kind: str, rng: random.Random, tenant: str) -> str:
    """Return a message body of ``kind`` that intake must refuse."""
    base: dict[str, Any] = {
        "schema_version": 1, "request_id": f"bad-{rng.getrandbits(48):012x}", "tenant_id": tenant,
        "model": "churn_risk", "model_version": "v1", "workload": "scoring", "priority": "normal",
        "estimated_accounts": 10, "requested_at": datetime.now(UTC).isoformat(),
    }
    raw = json.dumps(base)[:-1]  # the object without its closing brace, to append raw JSON
    bodies: dict[str, Callable[[], str]] = {
        # nested ~500 levels: a naive json.dumps of it recurses too deep
        "deep_nesting": lambda: raw + ', "params": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}",
        "deep_params": lambda: raw + ', "params": {"x": ' + "[" * 20 + "1" + "]" * 20 + "}}",
        # over the 64 KiB body limit, under the SQS 256 KiB one
        "huge_body": lambda: json.dumps(base | {"params": {"blob": "x" * (SQS_MAX_PAYLOAD - 60 * 1024)}}),
        "wide_params": lambda: json.dumps(base | {"params": {f"k{i}": "y" * 100 for i in range(120)}}),
        "trailing_newline": lambda: json.dumps(base | {"tenant_id": tenant + "\n"}),
        "bad_model_version": lambda: json.dumps(base | {"model_version": "1.0"}),
        "bad_schema_version": lambda: json.dumps(base | {"schema_version": 99}),
        "unknown_model": lambda: json.dumps(base | {"model": "no_such_model"}),
        "unknown_workload": lambda: json.dumps(base | {"workload": "nope"}),
        "non_json": lambda: "not json at all {" + "\u00e9" * rng.randrange(1, 50),
        "not_an_object": lambda: json.dumps([base]),
        "bad_timestamp": lambda: json.dumps(base | {"requested_at": "yesterday"}),
        "unknown_version": lambda: json.dumps(base | {"model_version": UNKNOWN_VERSION}),
    }
    if kind not in bodies:
        raise ValueError(f"unknown hostile kind {kind!r}")
    return bodies[kind]()


class SoakProducer(threading.Thread):
    """Send :class:`SoakLoad` over its windows, appending every message to ``record_path``.

    :param send: sends ``[(body, ...)]`` and returns the SQS message ids in order (raises on failure).

    Each send holds :attr:`lock`: whoever takes the SQS server down holds it for the outage, so a
    send never meets a dead server and the record stays exact (the producer is no part of the
    system under test).
    """

    def __init__(self, send: Callable[[list[str]], list[str]], tenants: list[str], load: SoakLoad,
                 record_path: Path, window_minutes: int = 1) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self.send, self.tenants, self.load, self.record_path = send, tenants, load, record_path
        self.interval = window_minutes * 60 / load.chunks_per_window
        self.stopped = threading.Event()
        self.done = threading.Event()
        self.rng = random.Random(load.seed)
        self.sent: list[SentMessage] = []
        self.earlier: list[tuple[str, SentMessage]] = []  # (body, record) of valid requests sent before
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self._count = self._cursor = 0
        # every (tenant, model) pair once, in a random order, walked cyclically across sends: a
        # window's requests are distinct pairs as long as it holds fewer requests than pairs
        self.pairs = [(t, w, m) for t in range(len(tenants)) for w, m in MODELS]
        self.rng.shuffle(self.pairs)

    def _valid(self, now: datetime, used: list[tuple[int, str, str]]) -> tuple[str, SentMessage]:
        self._count += 1
        if used and self.rng.random() < self.load.repeat_share:
            pair = self.rng.choice(used)  # a newer request for a pair of this send: supersedes
        else:
            pair = self.pairs[self._cursor % len(self.pairs)]
            self._cursor += 1
        used.append(pair)
        tenant_index, workload, model = pair
        request_id = f"soak-{self.load.seed}-{self._count:06d}"
        requested_at = (now + timedelta(microseconds=self._count)).isoformat()
        doc = {"schema_version": 1, "request_id": request_id, "tenant_id": self.tenants[tenant_index],
               "model": model, "model_version": "v1", "workload": workload,
               "priority": "high" if self.rng.random() < 0.1 else "normal",
               "estimated_accounts": accounts_for(tenant_index, self.load.accounts_base, self.load.accounts_spread),
               "requested_at": requested_at}
        return json.dumps(doc), SentMessage("", "valid", EXPECT_REQUEST, request_id, self.tenants[tenant_index],
                                            model, requested_at)

    def chunk(self, index: int) -> list[tuple[str, SentMessage]]:
        """Return the bodies and records of send number ``index`` (message ids still empty)."""
        per = self.load.requests // self.load.chunks + (1 if index < self.load.requests % self.load.chunks else 0)
        now = datetime.now(UTC)
        used: list[tuple[int, str, str]] = []
        out = [self._valid(now, used) for _ in range(per)]
        this_chunk = list(out)
        for _ in range(_share(per, self.load.duplicate_share, self.rng)):
            pool = self.earlier if self.earlier and self.rng.random() < 0.5 else this_chunk
            body, rec = self.rng.choice(pool)
            kind = "dup_earlier" if pool is self.earlier else "dup_same_send"
            out.append((body, SentMessage("", kind, EXPECT_DUPLICATE, rec.request_id, rec.tenant_id, rec.model,
                                          rec.requested_at)))
        for _ in range(_share(per, self.load.hostile_share, self.rng)):
            kind = self.rng.choice(HOSTILE_KINDS)
            body = hostile_body(kind, self.rng, self.rng.choice(self.tenants))
            if kind in PLAN_REFUSED_KINDS:  # the auditor follows its request id through the plan
                doc = json.loads(body)
                out.append((body, SentMessage("", kind, EXPECT_DEAD_LETTER, doc["request_id"], doc["tenant_id"],
                                              doc["model"], doc["requested_at"])))
            else:
                out.append((body, SentMessage("", kind, EXPECT_DEAD_LETTER)))
        self.rng.shuffle(out)
        self.earlier.extend(this_chunk)
        return out

    def send_chunk(self, index: int) -> None:
        """Send one chunk, then record each message with its SQS message id."""
        items = self.chunk(index)
        with self.lock:
            ids = self.send([body for body, _ in items])
        at = datetime.now(UTC).isoformat()
        records = [SentMessage(**(asdict(rec) | {"message_id": mid, "sent_at": at}))
                   for (_, rec), mid in zip(items, ids, strict=True)]
        with self.record_path.open("a", encoding="utf-8") as fh:
            fh.writelines(r.to_json() + "\n" for r in records)
        self.sent.extend(records)

    def run(self) -> None:
        """Send every chunk, ``interval`` seconds apart, unless stopped."""
        try:
            for index in range(self.load.chunks):
                if self.stopped.is_set():
                    break
                self.send_chunk(index)
                self.stopped.wait(self.interval)
        except BaseException as err:
            self.error = err
        finally:
            self.done.set()


def _share(count: int, share: float, rng: random.Random) -> int:
    """Return ``count * share`` rounded up or down at random (so small chunks still get some)."""
    exact = count * share
    return int(exact) + (1 if rng.random() < exact - int(exact) else 0)


def sqs_sender(client: Any, queue_url: str) -> Callable[[list[str]], list[str]]:
    """Return a sender that sends bodies in batches of ten (one by one if a batch is too large)."""

    def send(bodies: list[str]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(bodies), 10):
            chunk = bodies[start:start + 10]
            if sum(len(b.encode()) for b in chunk) > SQS_MAX_PAYLOAD - 1024:
                ids += [client.send_message(QueueUrl=queue_url, MessageBody=b)["MessageId"] for b in chunk]
                continue
            resp = client.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)])
            if resp.get("Failed"):
                raise RuntimeError(f"SQS refused {len(resp['Failed'])} messages: {resp['Failed']}")
            by_id = {int(s["Id"]): s["MessageId"] for s in resp["Successful"]}
            ids += [by_id[i] for i in range(len(chunk))]
        return ids

    return send


def read_sent(path: Path) -> list[SentMessage]:
    """Read every record of ``sent.jsonl``."""
    if not path.exists():
        return []
    return [SentMessage.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


__all__ = ["HOSTILE_KINDS", "INTAKE_REFUSED_KINDS", "PLAN_REFUSED_KINDS", "UNKNOWN_VERSION", "SentMessage", "SoakLoad",
           "SoakProducer",
           "hostile_body", "read_sent", "sqs_sender"]
