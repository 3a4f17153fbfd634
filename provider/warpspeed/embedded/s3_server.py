"""A real S3 server on loopback (S3Proxy 4.0.0, from Maven Central) for the embedded stack and the tests.

S3Proxy (``org.gaul:s3proxy``) serves the S3 REST API from a folder (its ``filesystem-nio2``
backend: one file per object, metadata in extended attributes) and checks SigV4 signatures. The
same boto3, pyarrow, pyiceberg and ``S3FileIO`` code as production talks to it, path-style
(``http://127.0.0.1:<port>/<bucket>/<key>``: no ``<bucket>.localhost`` resolves on loopback).

Why 4.0.0: today's SDKs send request checksums by default (``x-amz-checksum-crc32`` from boto3
and the Java SDK 2, ``crc64nvme`` from pyarrow's aws-sdk-cpp). S3Proxy 3.0.0 refuses them; it
works only with ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required`` in every client (pyarrow
reads it from the environment only) and ``s3proxy.ignore-unknown-headers=true`` on the server.
4.0.0 accepts every client's defaults, answers ``GET /healthz`` and hides unfinished multipart
uploads from listings. Its one gap: pyarrow's bulk ``DeleteObjects`` (``delete_dir_contents``)
sends a ``crc64nvme`` checksum it refuses; nothing here deletes that way.

Every component has an access key of its own (one ``--properties`` file per identity, all on
the same folder, so each sees every object): the key in a request's signature says who made it
(:mod:`warpspeed.embedded.s3_proxy`, in front of the server, counts by it). Keys and secrets are generated per state
folder into 0600 files; nothing secret is on the command line.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warpspeed.config.s3 import (
    COMPONENTS,
    DEFAULT_REGION,
    REQUEST_LOG,
    EmbeddedS3,
    embedded_bucket,
    embedded_endpoint_file,
)
from warpspeed.embedded.jvm import classpath, java_process
from warpspeed.embedded.s3_proxy import S3CountingProxy, S3Faults
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.state import private_dir, stable_port, write_private
from warpspeed.embedded.supervisor import Supervisor, supervised

log = logging.getLogger(__name__)

S3PROXY_MAIN = "org.gaul.s3proxy.Main"
S3PROXY_JARS = "s3proxy"
LOGBACK = """<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{30} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="OUT"/></root>
</configuration>
"""
"""S3Proxy ships no logging config and logs every request at DEBUG without one."""


def component_keys(folder: Path, components: Sequence[str] = COMPONENTS) -> Path:
    """Return ``<folder>/credentials.json`` (0600), generating a key and secret for each missing component."""
    path = folder / "credentials.json"
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        keys = {}
    missing = [c for c in components if c not in keys]
    for component in missing:
        keys[component] = {"access_key_id": f"WS{component.upper()}{secrets.token_hex(6).upper()}",
                           "secret_access_key": secrets.token_urlsafe(30)}
    if missing or not path.exists():
        write_private(path, json.dumps(keys, indent=1, sort_keys=True))
    return path


def identity_properties(port: int, basedir: Path, access_key_id: str, secret: str) -> str:
    """Return one S3Proxy ``--properties`` file: SigV4 with this identity, objects under ``basedir``."""
    return "\n".join([
        f"s3proxy.endpoint=http://127.0.0.1:{port}",
        "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={access_key_id}",
        f"s3proxy.credential={secret}",
        "jclouds.provider=filesystem-nio2",
        f"jclouds.filesystem.basedir={basedir}",
        "",
    ])


@dataclass(frozen=True)
class S3Server:
    """A running S3Proxy: its URL, where its objects live and the file of its keys."""

    endpoint_url: str
    basedir: Path
    credentials_file: Path
    region: str = DEFAULT_REGION

    def attach(self, home: Path, endpoint_url: str | None = None) -> EmbeddedS3:
        """Give state folder ``home`` its bucket here and record this server in ``<home>/s3/endpoint``.

        :param endpoint_url: the address clients use (a counting proxy in front), default the server's.
        """
        home = home.resolve()
        bucket = embedded_bucket(home)
        (self.basedir / bucket).mkdir(exist_ok=True)  # a folder under the basedir is a bucket
        server = EmbeddedS3(endpoint_url or self.endpoint_url, self.region, self.credentials_file, bucket)
        target = embedded_endpoint_file(home)
        private_dir(target.parent)
        write_private(target, server.to_json())
        return server

    def client(self, component: str = "stack") -> object:
        """Return a boto3 S3 client of ``component`` talking to the server directly."""
        return EmbeddedS3(self.endpoint_url, self.region, self.credentials_file, "").access(component).boto3_client()


def s3_process(folder: Path, jars_dir: Path) -> tuple[ServerProcess, S3Server]:
    """Prepare ``folder`` (keys, identities, stable port) and describe its S3Proxy server; start nothing.

    :param folder: the server's folder (``<home>/s3`` for a state folder): keys, config, log, objects.
    :param jars_dir: the folder whose ``s3proxy/`` holds the server's jars (``make setup``).
    """
    cp = classpath(jars_dir, S3PROXY_JARS)
    folder = private_dir(folder.resolve())
    basedir = private_dir(folder / "buckets")
    credentials_file = component_keys(folder)
    keys = json.loads(credentials_file.read_text(encoding="utf-8"))
    port = stable_port(folder / "port")
    args: list[str] = []
    for component in sorted(keys):  # the files hold the secrets; the command line only their paths
        props = identity_properties(port, basedir, keys[component]["access_key_id"],
                                    keys[component]["secret_access_key"])
        args += ["--properties", str(write_private(folder / f"identity-{component}.properties", props))]
    logback = write_private(folder / "logback.xml", LOGBACK)
    jvm_args = [f"-Dlogback.configurationFile={logback}"]
    process = java_process("s3", S3PROXY_MAIN, cp, port=port, log_path=folder / "s3proxy.log", jars_dir=jars_dir,
                           ready_path="/healthz", home=folder, jvm_args=jvm_args, args=args)
    return process, S3Server(f"http://127.0.0.1:{port}", basedir, credentials_file)


@contextmanager
def s3_server(folder: Path, jars_dir: Path, supervisor: Supervisor | None = None) -> Iterator[S3Server]:
    """Run S3Proxy on a stable loopback port with its objects under ``folder/buckets``; stop it on exit.

    :param supervisor: the stack's supervisor (one of its own if not given): it restarts the
        server on the same port if it dies.
    """
    with supervised(functools.partial(s3_process, folder, jars_dir), supervisor, "warpspeed-s3") as server:
        log.info("S3Proxy S3 server on %s (objects under %s)", server.endpoint_url, server.basedir)
        yield server


@dataclass(frozen=True)
class LocalS3:
    """The S3 server of a state folder, running, with the counting proxy every client goes through."""

    endpoint: EmbeddedS3
    """What clients use: the proxy's URL, the bucket, the keys' file."""
    server: S3Server
    proxy: S3CountingProxy

    @property
    def request_log(self) -> Path:
        """Return the proxy's request log (one JSON line per request)."""
        return request_log_path(self.server.credentials_file.parent)


def request_log_path(folder: Path) -> Path:
    """Return the request log of the S3 server whose folder is ``folder`` (``<home>/s3``)."""
    return folder / REQUEST_LOG


def counting_proxy(server: S3Server, faults: S3Faults | None = None, port: int = 0) -> S3CountingProxy:
    """Return the proxy (a context manager) that counts ``server``'s requests by the component whose key signed them.

    It appends each request to the server folder's request log (:func:`request_log_path`).
    """
    keys = json.loads(server.credentials_file.read_text(encoding="utf-8"))
    owners = {key["access_key_id"]: component for component, key in keys.items()}
    return S3CountingProxy(server.endpoint_url, owners, request_log_path(server.credentials_file.parent), faults, port)


@contextmanager
def embedded_s3(
    home: Path, jars_dir: Path, faults: S3Faults | None = None, supervisor: Supervisor | None = None
) -> Iterator[LocalS3]:
    """Run the S3 server of state folder ``home`` (objects under ``<home>/s3``) with its bucket; stop it on exit.

    Clients reach it through a counting proxy (:mod:`warpspeed.embedded.s3_proxy`) that logs every
    request to ``<home>/s3/requests.jsonl`` and injects ``faults`` if given. Both keep their
    ports across restarts (``<home>/s3/port``, ``<home>/s3/proxy-port``).
    """
    home = home.resolve()
    with s3_server(home / "s3", jars_dir, supervisor) as server:
        proxy_port = stable_port(server.credentials_file.parent / "proxy-port")
        with counting_proxy(server, faults, proxy_port) as proxy:
            attached = server.attach(home, proxy.endpoint_url)
            log.info("S3 requests of %s counted by the proxy on %s (log %s)", home, proxy.endpoint_url,
                     request_log_path(server.credentials_file.parent))
            try:
                yield LocalS3(attached, server, proxy)
            finally:
                embedded_endpoint_file(home).unlink(missing_ok=True)
