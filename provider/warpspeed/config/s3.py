"""How every S3 client of Warp Speed reaches storage: AWS itself, or an S3-compatible server.

One description, :class:`S3Access`, configures all four clients the same way: boto3 (documents,
staging), pyiceberg and pyarrow (``s3.*`` properties), Iceberg's ``S3FileIO`` in Spark (the
catalog's ``s3.*`` properties) and Hadoop's S3A file system in Spark (documents and raw data the
jobs read with ``spark.read``). On AWS it is empty: region and credentials come from the usual
chain (instance role, EMR step role, the Airflow AWS connection).

An S3-compatible server is named by the catalog's own properties (``s3.endpoint``,
``s3.path-style-access``, ``s3.access-key-id``, ``s3.secret-access-key``, ``s3.region``), the
keys Iceberg itself reads. The embedded stack's S3 server (S3Proxy on loopback,
:mod:`warpspeed.embedded.s3_server`) records its address in the state folder
(``<home>/s3/endpoint``) and keeps one access key per *component* (intake, plan, score,
publish, maintenance...) in a 0600 file, so every request it counts says who made it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.exceptions import WarpSpeedConfigError

ENDPOINT_FILE = "s3/endpoint"
"""Where, under the state folder, the running embedded S3 server records its address (JSON)."""
REQUEST_LOG = "requests.jsonl"
"""The counting proxy's log of every request, beside the server's keys (one JSON line per request)."""
DEFAULT_REGION = "us-east-1"
STACK = "stack"
"""The component of everything that is not a window step: seeding, tests, tools, the dashboard."""
CATALOG_SERVER = "catalog"
"""The REST catalog server's own metadata reads and writes."""
COMPONENTS = (STACK, CATALOG_SERVER, "intake", "plan", "score", "publish", "maintenance", "preprocess")
"""Who makes S3 requests; on the embedded S3 server each has an access key of its own."""
WINDOW_COMPONENTS = ("intake", "plan", "score", "publish")
"""The components whose requests belong to a scoring window."""
S3FILEIO = "org.apache.iceberg.aws.s3.S3FileIO"


def embedded_bucket(home: Path) -> str:
    """Return the bucket of state folder ``home`` on the embedded S3 server (one per state folder)."""
    return "warpspeed-" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def embedded_endpoint_file(home: Path) -> Path:
    """Return the file in which the embedded S3 server of ``home`` records its address."""
    return home / ENDPOINT_FILE


@dataclass(frozen=True)
class S3Access:
    """How one component's S3 clients reach storage.

    :param endpoint_url: an S3-compatible server (``http://127.0.0.1:9000``); None: AWS.
    :param region: the signing region (None: the client's default chain).
    :param path_style: address buckets as ``/bucket/key`` (every S3-compatible server on loopback).
    :param access_key_id: the access key (None: the default credential chain).
    :param secret_access_key: its secret.
    :param component: who makes the requests (what a counting proxy attributes them to).
    """

    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    component: str = STACK

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise WarpSpeedConfigError(
                "s3.access-key-id and s3.secret-access-key go together: set both catalog properties or neither"
            )
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise WarpSpeedConfigError(
                f"catalog property s3.endpoint={self.endpoint_url!r} must be an http(s):// URL"
            )

    @property
    def is_aws(self) -> bool:
        """Tell whether this is AWS itself (no endpoint, no keys: the default chain decides)."""
        return self.endpoint_url is None and self.access_key_id is None

    @classmethod
    def from_properties(cls, props: Mapping[str, str], component: str = STACK) -> S3Access:
        """Read the ``s3.*`` catalog properties Iceberg defines (``client.region`` as the region fallback)."""
        path_style = str(props.get("s3.path-style-access", "")).lower() == "true" or str(
            props.get("s3.force-virtual-addressing", "")).lower() == "false"
        return cls(
            endpoint_url=props.get("s3.endpoint") or None,
            region=props.get("s3.region") or props.get("client.region") or None,
            path_style=path_style,
            access_key_id=props.get("s3.access-key-id") or None,
            secret_access_key=props.get("s3.secret-access-key") or None,
            component=component,
        )

    def catalog_properties(self) -> dict[str, str]:
        """Return the ``s3.*`` properties that make pyiceberg and S3FileIO use this access."""
        props: dict[str, str] = {}
        if self.endpoint_url:
            props["s3.endpoint"] = self.endpoint_url
        if self.path_style:
            props |= {"s3.path-style-access": "true", "s3.force-virtual-addressing": "false"}
        if self.region:
            props |= {"s3.region": self.region, "client.region": self.region}
        if self.access_key_id and self.secret_access_key:
            props |= {"s3.access-key-id": self.access_key_id, "s3.secret-access-key": self.secret_access_key}
        return props

    def hadoop_conf(self) -> dict[str, str]:
        """Return the Spark settings that make Hadoop's ``s3://`` and ``s3a://`` paths use this access (S3A).

        Empty on AWS: EMR serves ``s3://`` with EMRFS and the instance role.
        """
        if self.is_aws:
            return {}
        conf = {
            "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.path.style.access": str(self.path_style).lower(),
            "spark.hadoop.fs.s3a.change.detection.version.required": "false",
        }
        if self.endpoint_url:
            conf |= {"spark.hadoop.fs.s3a.endpoint": self.endpoint_url,
                     "spark.hadoop.fs.s3a.connection.ssl.enabled": str(self.endpoint_url.startswith("https")).lower()}
        if self.region:
            conf["spark.hadoop.fs.s3a.endpoint.region"] = self.region
        if self.access_key_id and self.secret_access_key:
            conf |= {
                "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                "spark.hadoop.fs.s3a.access.key": self.access_key_id,
                "spark.hadoop.fs.s3a.secret.key": self.secret_access_key,
            }
        return conf

    def boto3_client(self) -> Any:
        """Return a boto3 S3 client with this access (default retries: standard mode, 3 attempts)."""
        import boto3
        from botocore.config import Config

        config = Config(s3={"addressing_style": "path"}) if self.path_style else None
        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
        )


@dataclass(frozen=True)
class EmbeddedS3:
    """What the embedded S3 server of a state folder recorded: its address and its keys' file."""

    endpoint_url: str
    region: str
    credentials_file: Path
    bucket: str

    def access(self, component: str = STACK) -> S3Access:
        """Return ``component``'s access (its own key; the stack's for an unknown component)."""
        try:
            keys = json.loads(self.credentials_file.read_text(encoding="utf-8"))
        except OSError as err:
            raise WarpSpeedConfigError(
                f"the embedded S3 server's keys ({self.credentials_file}) cannot be read ({err.strerror}): "
                "run as the user who started the stack"
            ) from err
        key = keys.get(component) or keys[STACK]
        return S3Access(self.endpoint_url, self.region, True, key["access_key_id"], key["secret_access_key"],
                        component if component in keys else STACK)

    @property
    def request_log(self) -> Path:
        """Return the log in which the counting proxy in front of the server records every request."""
        return self.credentials_file.parent / REQUEST_LOG

    def to_json(self) -> str:
        """Serialise for the endpoint file."""
        return json.dumps({"endpoint_url": self.endpoint_url, "region": self.region,
                           "credentials_file": str(self.credentials_file), "bucket": self.bucket})


def running_embedded_s3(home: Path) -> EmbeddedS3 | None:
    """Return the embedded S3 server that state folder ``home`` records, or None if it records none."""
    try:
        doc = json.loads(embedded_endpoint_file(home).read_text(encoding="utf-8"))
        return EmbeddedS3(str(doc["endpoint_url"]), str(doc.get("region") or DEFAULT_REGION),
                          Path(doc["credentials_file"]), str(doc.get("bucket") or embedded_bucket(home)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def embedded_access(home: Path, component: str = STACK) -> S3Access:
    """Return ``component``'s access to the embedded S3 server of ``home``, or say how to start it."""
    server = running_embedded_s3(home)
    if server is None:
        raise WarpSpeedConfigError(
            f"no embedded S3 server runs for {home} ({embedded_endpoint_file(home)} missing): start the "
            "embedded stack (`warpspeed stack up`), or set [warpspeed] storage_prefix to your s3:// "
            "bucket (or a file:// folder)"
        )
    return server.access(component)
