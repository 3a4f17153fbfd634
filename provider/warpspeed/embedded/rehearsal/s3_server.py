"""S3Proxy 3.0.0 on loopback for the rehearsal: a real S3 API server over a local folder.

**Temporary.** The embedded stack gets its own S3 server (issue 21); when it lands, the rehearsal
uses that one and this module goes. Every S3 touch point of the rehearsal is here: the server,
its credential and a client that works with it.

S3Proxy checks signatures (``aws-v2-or-v4``) against a credential generated per rehearsal folder
(kept in a 0600 file). Since boto3 1.36 and the AWS SDK v2 2.30, clients add checksums S3Proxy 3.0
answers with ``NotImplemented`` or a SHA-256 mismatch: clients must compute them only when required
(``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``, and the same for responses).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warpspeed.embedded.jvm import classpath, java_bin
from warpspeed.embedded.rehearsal.processes import spawn

JARS = "rehearsal-s3proxy"
LOGBACK = """<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %level %logger{0} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="out"/></root>
</configuration>
"""
"""S3Proxy ships no logging configuration: logback's default logs every request at DEBUG."""
CHECKSUM_ENV = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
                "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


@dataclass(frozen=True)
class S3Identity:
    """The access key and secret the S3 server accepts."""

    access_key: str
    secret_key: str

    @classmethod
    def of(cls, folder: Path) -> S3Identity:
        """Return the identity kept in ``folder`` (made once, 0600)."""
        path = folder / "credentials.json"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"access_key": f"rehearsal{secrets.token_hex(4)}", "secret_key": secrets.token_urlsafe(24)},
                          out)
        return cls(**json.loads(path.read_text()))


def start_s3proxy(
    folder: Path, jars_dir: Path, port: int, identity: S3Identity, registry: Path,
) -> subprocess.Popen[bytes]:
    """Start S3Proxy on ``127.0.0.1:port`` over ``folder/data`` (its readiness: any HTTP answer)."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    conf = folder / "s3proxy.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join([
            f"s3proxy.endpoint=http://127.0.0.1:{port}", "s3proxy.authorization=aws-v2-or-v4",
            f"s3proxy.identity={identity.access_key}", f"s3proxy.credential={identity.secret_key}",
            "jclouds.provider=filesystem-nio2", f"jclouds.filesystem.basedir={data}", "",
        ]))
    (folder / "logback.xml").write_text(LOGBACK)
    argv = [java_bin(), "-Xmx256m", "-XX:+UseSerialGC", f"-Dlogback.configurationFile={folder / 'logback.xml'}",
            "-cp", classpath(jars_dir, JARS), "org.gaul.s3proxy.Main",
            "--properties", str(conf)]
    return spawn(argv, env=dict(os.environ), log=folder / "s3proxy.log", registry=registry)


def s3_client(endpoint: str, identity: S3Identity, region: str) -> Any:
    """Return a boto3 S3 client for the server (path-style, checksums only when required)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=identity.access_key,
        aws_secret_access_key=identity.secret_key,
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )
