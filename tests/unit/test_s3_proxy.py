"""The counting proxy relays S3 requests byte for byte, counts them by component and injects S3's faults."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from warpspeed.embedded.s3_proxy import S3CountingProxy, S3Faults

SEEN: list[dict[str, Any]] = []


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        SEEN.append({"method": self.command, "path": self.path, "host": self.headers["Host"], "body": body})
        payload = json.dumps({"got": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_HEAD = do_POST = _answer


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SEEN.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _signed(key: str) -> dict[str, str]:
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261204/us-east-1/s3/aws4_request, "
                             "SignedHeaders=host, Signature=00"}


def test_requests_pass_unchanged_and_are_counted_by_component(upstream: str, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with S3CountingProxy(upstream, {"KSCORE": "score", "KPLAN": "plan"}, log) as proxy:
        port = int(proxy.endpoint_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("PUT", "/bucket/w/plan.json", body=b"x" * 1000, headers=_signed("KPLAN"))
        assert conn.getresponse().read() == b'{"got": 1000}'
        conn.request("HEAD", "/bucket/w/t.parquet", headers=_signed("KSCORE"))  # same connection: keep-alive
        assert conn.getresponse().read() == b""
        conn.request("GET", "/bucket/w/t.parquet", headers=_signed("KSCORE") | {"Range": "bytes=0-3"})
        conn.getresponse().read()
        conn.putrequest("PUT", "/bucket/w/big?partNumber=1&uploadId=u")
        for name, value in (_signed("KSCORE") | {"Transfer-Encoding": "chunked"}).items():
            conn.putheader(name, value)
        conn.endheaders()
        conn.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        assert conn.getresponse().read() == b'{"got": 11}'
        conn.request("GET", "/bucket?list-type=2", headers=_signed("SOMEONE"))
        conn.getresponse().read()
        conn.close()
        counts = proxy.by_component()
    assert counts == {"plan": {"PutObject": 1}, "score": {"GetObjectRange": 1, "HeadObject": 1, "UploadPart": 1},
                      "unknown": {"ListObjectsV2": 1}}
    assert [s["host"] for s in SEEN] == [f"127.0.0.1:{port}"] * 5  # the Host the client signed reaches the server
    assert SEEN[3]["body"] == b"hello world"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["component"], r["op"], r["status"]) for r in lines][:2] == [("plan", "PutObject", 200),
                                                                          ("score", "HeadObject", 200)]


def test_faults_answer_slowdown_reset_or_delay_without_reaching_the_server(upstream: str) -> None:
    with S3CountingProxy(upstream, {"KSCORE": "score"}) as proxy:
        port = int(proxy.endpoint_url.rsplit(":", 1)[1])
        proxy.set_faults(S3Faults(rate=0.99, actions=("slowdown",)))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("PUT", "/bucket/k", body=b"abc", headers=_signed("KSCORE"))
        answer = conn.getresponse()
        assert (answer.status, b"<Code>SlowDown</Code>" in answer.read()) == (503, True)
        proxy.set_faults(S3Faults(rate=0.99, actions=("reset",)))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/bucket/k", headers=_signed("KSCORE"))
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.getresponse()
        proxy.set_faults(S3Faults(rate=0.99, actions=("delay",), delay_s=0.01, components=("plan",)))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/bucket/k", headers=_signed("KSCORE"))  # not plan's: no fault
        assert conn.getresponse().status == 200
        injected = dict(proxy.injected)
    assert injected == {"PutObject:slowdown": 1, "GetObject:reset": 1}
    assert [s["method"] for s in SEEN] == ["GET"]  # faulted requests never reached the server
    with pytest.raises(ValueError, match="fault rate"):
        S3Faults(rate=1.5)
