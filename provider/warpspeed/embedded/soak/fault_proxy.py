"""A fault-injecting HTTP proxy on loopback in front of the SQS server.

The pipeline's AWS connection points at the proxy; the producer and the auditor talk to the SQS
server directly. A share of the calls never reaches the server and is answered with an error
that AWS really returns: HTTP 500 ``InternalError``, or HTTP 400 ``ThrottlingException`` /
``RequestThrottled`` (throttling). Such a request is dropped *before* it is forwarded, so the
failed call changed nothing on the server.

A ``reply_lost_share`` of the faults of the calls in :data:`REPLY_LOST_ACTIONS` is the other
failure a network shows, :data:`REPLY_LOST`: "applied, reply lost". The request is forwarded
and the server applies it (a message sent, deleted, hidden or received), then the connection
to the client is reset instead of relaying the answer. The client cannot tell it from a
failure before the server, and retries a call that already happened: a second send, a delete
of a deleted message, messages received and hidden that the client never saw (they come back
after their visibility timeout with one receive more).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from warpspeed.embedded.s3_relay import reset
from warpspeed.embedded.serving import ServingThread

FAULTS = (
    (500, "InternalError", "We encountered an internal error. Please try again."),
    (400, "ThrottlingException", "Rate exceeded"),
    (400, "RequestThrottled", "Request is throttled."),
)
REPLY_LOST = "ReplyLost"
"""The fault kind of a call forwarded and applied whose answer never reaches the client."""
REPLY_LOST_ACTIONS = frozenset({
    "SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch",
    "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "ReceiveMessage",
})
"""The calls whose reply may be lost after the server applied them (the ones that change the queue)."""


class FaultProxy(ServingThread):
    """Forward SQS calls to ``upstream``, failing a ``fault_rate`` share of them.

    :param upstream: the SQS server's endpoint (may be set after construction, before traffic).
    :param fault_rate: share of calls failed (0 disables): answered with one of :data:`FAULTS`,
        or, for a call of :data:`REPLY_LOST_ACTIONS`, applied with its reply lost.
    :param reply_lost_share: share of the faults of :data:`REPLY_LOST_ACTIONS` calls that are
        :data:`REPLY_LOST` (the others are answered errors).
    """

    def __init__(self, upstream: str = "", fault_rate: float = 0.05, seed: int = 5,
                 reply_lost_share: float = 0.0) -> None:
        if not 0 <= fault_rate < 1 or not 0 <= reply_lost_share <= 1:
            raise ValueError(f"fault_rate must be in [0, 1) and reply_lost_share in [0, 1], got "
                             f"{fault_rate} and {reply_lost_share}")
        self.upstream = upstream
        self.fault_rate = fault_rate
        self.reply_lost_share = reply_lost_share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        self.calls = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="sqs-fault-proxy", daemon=True)

    @property
    def endpoint_url(self) -> str:
        """Return the proxy's URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def injected(self) -> int:
        """Return how many calls were failed on purpose."""
        return sum(self.faults.values())

    def by_kind(self) -> dict[str, int]:
        """Return the faults injected so far by kind (``InternalError``... and :data:`REPLY_LOST`)."""
        out: Counter[str] = Counter()
        with self.lock:
            for key, n in self.faults.items():
                out[key.rpartition(":")[2]] += n
        return dict(sorted(out.items()))

    def decide(self, action: str) -> tuple[int, str, str] | None:
        """Return the fault for a call of ``action``, or None to forward it.

        The fault is one of :data:`FAULTS` (answered without forwarding) or ``(0, REPLY_LOST, "")``
        (forwarded, its answer dropped and the client's connection reset).
        """
        with self.lock:
            self.calls += 1
            if not self.fault_rate or self.rng.random() >= self.fault_rate:
                return None
            if action in REPLY_LOST_ACTIONS and self.reply_lost_share and self.rng.random() < self.reply_lost_share:
                self.faults[f"{action}:{REPLY_LOST}"] += 1
                return 0, REPLY_LOST, ""
            fault = self.rng.choice(FAULTS)
            self.faults[f"{action}:{fault[1]}"] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2] or self.command
                fault = proxy.decide(action)
                if fault is not None and fault[1] != REPLY_LOST:
                    status, code, message = fault
                    payload = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("x-amzn-query-error", f"{code};{'Sender' if status < 500 else 'Receiver'}")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                target = urlsplit(proxy.upstream)
                conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                    except OSError:  # the server is down (killed, restarting): so is the connection
                        fault = (0, "down", "")
                    if fault is not None:  # applied by the server (or not there); the client never hears
                        self.close_connection = True
                        reset(self.connection)
                        return
                    self.send_response(resp.status)
                    for key, value in resp.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_POST = _relay
            do_GET = _relay

        return Handler
