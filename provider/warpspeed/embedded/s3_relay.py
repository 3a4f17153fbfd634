"""Relay S3 REST requests byte for byte, and say what each one is: the parts of the counting proxy.

A SigV4 signature covers the ``Host`` header and the body, so a proxy that wants to stay
invisible must not re-encode anything: it forwards the request line, the raw header bytes and
the body exactly as they came (``Content-Length`` and chunked bodies, ``Expect: 100-continue``),
and S3Proxy checks the signature against the ``Host`` the client signed (the proxy's address).
:func:`classify` names a path-style request's S3 operation; :func:`access_key_of` reads the access
key id a request was signed with (who made it).
"""

from __future__ import annotations

import re
import socket
import struct
from urllib.parse import parse_qs, unquote, urlsplit

END_OF_HEAD = b"\r\n\r\n"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
"""SigV4: ``Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/s3/aws4_request, ...``."""
_SIGV2 = re.compile(r"^AWS ([^:\s]+):")
GET_HEAD = ("GetObject", "GetObjectRange", "HeadObject")
"""The read requests a scan of an Iceberg table makes, S3's cheap request class."""


def classify(method: str, target: str, headers: dict[str, str]) -> tuple[str, str, str]:
    """Return ``(operation, bucket, key)`` of a path-style S3 request (``/bucket/key?query``)."""
    parsed = urlsplit(target)
    query = parse_qs(parsed.query, keep_blank_values=True)
    bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
    verb = method.upper()
    if not bucket:
        return ("ListBuckets" if verb == "GET" else f"{verb}Service"), "", ""
    if not key:
        return _bucket_operation(verb, query), bucket, query.get("prefix", [""])[0]
    return _object_operation(verb, query, headers), bucket, key


def _object_operation(verb: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    copy, upload = "x-amz-copy-source" in headers, "uploadId" in query
    by_verb = {
        "GET": "ListParts" if upload else "GetObjectRange" if "range" in headers else "GetObject",
        "HEAD": "HeadObject",
        "PUT": ("UploadPartCopy" if copy else "UploadPart") if upload and "partNumber" in query
        else ("CopyObject" if copy else "PutObject"),
        "POST": "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload" if upload
        else "PostObject",
        "DELETE": "AbortMultipartUpload" if upload else "DeleteObject",
    }
    return by_verb.get(verb, f"{verb}Object")


def _bucket_operation(verb: str, query: dict[str, list[str]]) -> str:
    if verb == "GET":
        for flag, operation in (("uploads", "ListMultipartUploads"), ("location", "GetBucketLocation"),
                                ("versions", "ListObjectVersions"), ("lifecycle", "GetBucketLifecycleConfiguration")):
            if flag in query:
                return operation
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    if verb == "POST" and "delete" in query:
        return "DeleteObjects"
    if verb == "PUT" and "lifecycle" in query:
        return "PutBucketLifecycleConfiguration"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(verb, f"{verb}Bucket")


def access_key_of(headers: dict[str, str], target: str) -> str:
    """Return the access key id that signed the request (header or presigned URL), ``-`` if unsigned."""
    auth = headers.get("authorization", "")
    found = _CREDENTIAL.search(auth) or _SIGV2.search(auth)
    if found:
        return found.group(1)
    query = parse_qs(urlsplit(target).query)
    if "X-Amz-Credential" in query:
        return query["X-Amz-Credential"][0].split("/")[0]
    return query.get("AWSAccessKeyId", ["-"])[0]


def read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    """Read up to the end of a message head; return it (terminator included), keep the rest in ``buf``."""
    while True:
        end = buf.find(END_OF_HEAD)
        if end >= 0:
            head = bytes(buf[: end + 4])
            del buf[: end + 4]
            return head
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """Return a head's first line and its headers (names lower-cased)."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _fill(src: socket.socket, buf: bytearray, size: int, what: str) -> None:
    while len(buf) < size:
        chunk = src.recv(max(65536, size - len(buf)))
        if not chunk:
            raise ConnectionError(f"end of stream in {what}")
        buf += chunk


def _relay_chunked(src: socket.socket, buf: bytearray, dst: socket.socket | None) -> int:
    size_total = 0
    while True:
        while b"\r\n" not in buf:
            _fill(src, buf, len(buf) + 1, "a chunk size")
        line_end = buf.find(b"\r\n")
        size = int(bytes(buf[:line_end]).split(b";")[0], 16)
        if size == 0:  # "0\r\n", trailer lines, "\r\n": the first blank line after the size line ends it
            while (end := buf.find(END_OF_HEAD, line_end)) < 0:
                _fill(src, buf, len(buf) + 1, "the trailers")
            end += 4
            if dst is not None:
                dst.sendall(bytes(buf[:end]))
            del buf[:end]
            return size_total
        need = line_end + 2 + size + 2
        _fill(src, buf, need, "a chunk")
        if dst is not None:
            dst.sendall(bytes(buf[:need]))
        del buf[:need]
        size_total += size


def relay_body(src: socket.socket, buf: bytearray, dst: socket.socket | None, headers: dict[str, str],
               *, until_close: bool = False) -> int:
    """Copy one message body from ``src`` (``buf`` holds bytes already read) to ``dst``; return its size.

    ``dst`` None drains the body. ``until_close``: a response without length runs to end of stream.
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _relay_chunked(src, buf, dst)
    if "content-length" in headers:
        left = int(headers["content-length"])
        take = min(left, len(buf))
        if dst is not None and take:
            dst.sendall(bytes(buf[:take]))
        del buf[:take]
        size, left = take, left - take
        while left:
            chunk = src.recv(min(262144, left))
            if not chunk:
                raise ConnectionError("end of stream in a body")
            if dst is not None:
                dst.sendall(chunk)
            left -= len(chunk)
            size += len(chunk)
        return size
    if not until_close:
        return 0
    size = len(buf)
    if dst is not None and buf:
        dst.sendall(bytes(buf))
    buf.clear()
    while chunk := src.recv(262144):
        if dst is not None:
            dst.sendall(chunk)
        size += len(chunk)
    return size


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (``SO_LINGER`` 0), as a dropped connection looks to a client."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()
