"""A fault-injecting HTTP proxy on loopback in front of the SQS server.

The pipeline's AWS connection points at the proxy; the producer and the auditor talk to the SQS
server directly. A share of the calls never reaches the server and is answered with an error
that AWS really returns: HTTP 500 ``InternalError``, or HTTP 400 ``ThrottlingException`` /
``RequestThrottled`` (throttling). The request is dropped *before* it is forwarded, so a failed
call changed nothing on the server: what is tested is the pipeline's retrying, not SQS's.
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

from warpspeed.embedded.serving import ServingThread

FAULTS = (
    (500, "InternalError", "We encountered an internal error. Please try again."),
    (400, "ThrottlingException", "Rate exceeded"),
    (400, "RequestThrottled", "Request is throttled."),
)


class FaultProxy(ServingThread):
    """Forward SQS calls to ``upstream``, failing a ``fault_rate`` share of them.

    :param upstream: the SQS server's endpoint (may be set after construction, before traffic).
    :param fault_rate: share of calls answered with one of :data:`FAULTS` (0 disables).
    """

    def __init__(self, upstream: str = "", fault_rate: float = 0.05, seed: int = 5) -> None:
        if not 0 <= fault_rate < 1:
            raise ValueError(f"fault_rate must be in [0, 1), got {fault_rate}")
        self.upstream = upstream
        self.fault_rate = fault_rate
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

    def decide(self, action: str) -> tuple[int, str, str] | None:
        """Return the fault to answer ``action`` with, or None to forward it."""
        with self.lock:
            self.calls += 1
            if self.fault_rate and self.rng.random() < self.fault_rate:
                fault = self.rng.choice(FAULTS)
                self.faults[f"{action}:{fault[1]}"] += 1
                return fault
        return None

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
                if fault is not None:
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
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
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
