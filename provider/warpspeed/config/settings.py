"""Warp Speed settings, read from the provider's ``[warpspeed]`` Airflow config section.

Every key can also be set as ``AIRFLOW__WARPSPEED__<KEY>``. No default points into a source
checkout: the state folder is ``[warpspeed] home``, else ``$WARPSPEED_HOME``, else
``~/.warpspeed``; the jars folder is ``[warpspeed] jars_dir``, else ``$WARPSPEED_JARS_DIR``, else
``<home>/jars``. The repository's Makefile exports both variables to its own folders.

Storage defaults to the state folder's bucket on the embedded S3 server
(``s3://warpspeed-<hash>/storage``, the warehouse beside it), as production keeps everything in
S3; ``storage_prefix = file:///…`` keeps documents and the embedded warehouse in local folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.s3 import (
    S3Access,
    embedded_access,
    embedded_bucket,
    embedded_endpoint_file,
    running_embedded_s3,
)
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import Storage, local_path, storage_for
from warpspeed.window.length import check_window_minutes

SECTION = "warpspeed"
COMPUTE_BACKENDS = ("local", "emr")
PREPROCESSING_BACKENDS = ("local", "glue")
WHOLE_NUMBER_KEYS = ("window_minutes", "window_size_limit", "local_spark_idle_seconds", "intake_visibility_timeout")
"""The :class:`WarpSpeedSettings` fields read as whole numbers (:func:`whole_number`)."""


def default_home() -> Path:
    """Return the state folder: ``$WARPSPEED_HOME``, else ``~/.warpspeed`` (per user)."""
    return Path(os.environ.get("WARPSPEED_HOME") or Path.home() / ".warpspeed").resolve()


def default_jars_dir(home: Path) -> Path:
    """Return the jars folder: ``$WARPSPEED_JARS_DIR``, else ``<home>/jars``."""
    return Path(os.environ.get("WARPSPEED_JARS_DIR") or home / "jars")


@dataclass(frozen=True)
class WarpSpeedSettings:
    """Resolved settings for one run; build with :meth:`from_mapping` or :func:`load_settings`."""

    home: Path
    storage_prefix: str
    catalog: CatalogConfig
    aws_conn_id: str = "aws_default"
    queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    compute_backend: str = "local"
    window_minutes: int = 30
    window_size_limit: int = 2000
    jars_dir: Path = Path()
    spark_master: str = "local[*]"
    local_spark_idle_seconds: int = 3600
    """How long the warm local Spark engine waits for work before it stops (0: no warm engine,
    one ``spark-submit`` per job)."""
    preprocessing_backend: str | None = None
    """``[warpspeed] preprocessing_backend`` as configured (None: follow ``compute_backend``)."""
    intake_visibility_timeout: int = 600
    """Seconds a message received by the collect stays hidden (extended at half-time while held)."""
    region_name: str | None = None
    """AWS region of SQS, S3, EMR and Glue calls (``[warpspeed] region``; None: the catalog's region, else
    the AWS connection's)."""

    def __post_init__(self) -> None:
        if self.region_name is None and self.catalog.region:
            object.__setattr__(self, "region_name", self.catalog.region)
        if self.compute_backend not in COMPUTE_BACKENDS:
            raise WarpSpeedConfigError(
                f"[warpspeed] compute_backend={self.compute_backend!r}: "
                f"use one of {', '.join(COMPUTE_BACKENDS)}"
            )
        check_window_minutes(self.window_minutes)
        if self.preprocessing_backend not in (None, *PREPROCESSING_BACKENDS):
            raise WarpSpeedConfigError(
                f"[warpspeed] preprocessing_backend={self.preprocessing_backend!r}: "
                f"use one of {', '.join(PREPROCESSING_BACKENDS)}"
            )
        if self.jars_dir == Path():
            object.__setattr__(self, "jars_dir", default_jars_dir(self.home))
        if self.window_size_limit < 1:
            raise WarpSpeedConfigError("[warpspeed] window_size_limit must be at least 1")
        if self.local_spark_idle_seconds < 0:
            raise WarpSpeedConfigError(
                "[warpspeed] local_spark_idle_seconds must be 0 (no warm engine) or more seconds"
            )
        if not 10 <= self.intake_visibility_timeout <= 43200:
            raise WarpSpeedConfigError(
                f"[warpspeed] intake_visibility_timeout={self.intake_visibility_timeout} must be between 10 "
                "and 43200 seconds (the SQS limit)"
            )

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, str | None], catalog: CatalogConfig | None = None
    ) -> WarpSpeedSettings:
        """Build settings from ``[warpspeed]`` keys; empty values take the defaults.

        :param catalog: the catalog when it comes from elsewhere (the ``catalog_conn_id``
            connection); otherwise the ``catalog_*`` keys decide (default: the embedded REST catalog).
        """

        def get(key: str) -> str | None:
            value = values.get(key)
            return value if value not in (None, "") else None

        home = Path(get("home") or default_home()).resolve()
        storage_prefix = get("storage_prefix") or f"s3://{embedded_bucket(home)}/storage"
        if catalog is None:
            catalog = catalog_from_settings(get, home, s3=storage_prefix.startswith("s3://"))
        try:
            numbers = {key: whole_number(key, get(key), getattr(cls, key)) for key in WHOLE_NUMBER_KEYS}
        except WarpSpeedConfigError as err:
            raise WarpSpeedConfigError(
                f"{err}; window settings must be integers ({', '.join(WHOLE_NUMBER_KEYS)})"
            ) from None
        return cls(
            home=home,
            storage_prefix=storage_prefix,
            catalog=catalog,
            aws_conn_id=get("aws_conn_id") or cls.aws_conn_id,
            queue_url=get("queue_url"),
            dead_letter_queue_url=get("dead_letter_queue_url"),
            compute_backend=get("compute_backend") or cls.compute_backend,
            jars_dir=Path(get("jars_dir") or default_jars_dir(home)),
            spark_master=get("spark_master") or cls.spark_master,
            preprocessing_backend=get("preprocessing_backend"),
            region_name=get("region"),
            **numbers,
        )

    def for_component(self, component: str) -> WarpSpeedSettings:
        """Return these settings as ``component`` (``intake``, ``plan``, ``score``...) uses them.

        On the embedded S3 server each component signs its requests with a key of its own, so
        the requests it makes are counted as its own; elsewhere nothing changes.
        """
        return replace(self, catalog=self.catalog.for_component(component))

    def s3_access(self) -> S3Access:
        """Return how documents under :attr:`storage_prefix` are reached.

        The state folder's bucket: its embedded S3 server (with this component's key); any other
        prefix: the catalog's ``s3.*`` properties, else AWS's default chain.
        """
        if self.storage_prefix.startswith(f"s3://{embedded_bucket(self.home)}/"):
            return embedded_access(self.home, self.catalog.s3_component)
        return self.catalog.s3_access()

    def storage_settings_named(self) -> dict[str, str]:
        """Return what sets storage's ``endpoint``, ``bucket`` and ``credentials``, as an error message names it."""
        bucket = f"[warpspeed] storage_prefix={self.storage_prefix!r}"
        if self.storage_prefix.startswith(f"s3://{embedded_bucket(self.home)}/"):
            server = running_embedded_s3(self.home)
            keys = server.credentials_file if server is not None else self.home / "s3" / "credentials.json"
            return {"endpoint": f"the embedded S3 server of {self.home} (its address in "
                                f"{embedded_endpoint_file(self.home)}: is the stack running?)",
                    "bucket": bucket, "credentials": f"the embedded S3 server's keys in {keys}"}
        access = self.catalog.s3_access()
        if not access.is_aws:
            return {"endpoint": f"catalog property s3.endpoint={access.endpoint_url!r}", "bucket": bucket,
                    "credentials": "catalog properties s3.access-key-id and s3.secret-access-key"}
        conn = f"the Airflow connection [warpspeed] aws_conn_id={self.aws_conn_id!r}"
        return {"endpoint": f"{conn} (its region_name / endpoint_url)", "bucket": bucket, "credentials": conn}

    def check_storage(self, storage: Storage | None = None) -> None:
        """Make one request to storage; raise a config error naming the setting to fix if it fails."""
        from warpspeed.storage.preflight import check_storage

        check_storage(storage or self.storage(), self.storage_prefix, self.storage_settings_named())

    def s3_request_log(self) -> Path | None:
        """Return the request log of the embedded S3 server storage is on (None: not on one; AWS logs elsewhere)."""
        if not self.storage_prefix.startswith(f"s3://{embedded_bucket(self.home)}/"):
            return None
        server = running_embedded_s3(self.home)
        return server.request_log if server is not None else None

    def storage(self, s3_client_factory: Callable[[], Any] | None = None) -> Storage:
        """Return the storage of documents under :attr:`storage_prefix`.

        :param s3_client_factory: the S3 client on AWS (e.g. the Airflow AWS connection's); an
            S3-compatible server (:meth:`s3_access` has an endpoint) always gets its own client.
        """
        if not self.storage_prefix.startswith(("s3://", "s3a://")):
            return storage_for(self.storage_prefix)
        # resolved on the first request: settings are built where no server runs
        return storage_for(self.storage_prefix, lambda: self.s3_client(s3_client_factory))

    def s3_client(self, aws_client_factory: Callable[[], Any] | None = None) -> Any:
        """Return the S3 client of storage: an S3-compatible server's own (:meth:`s3_access`), else AWS's.

        :param aws_client_factory: the client on AWS (e.g. the Airflow AWS connection's); None:
            boto3's default chain.
        """
        access = self.s3_access()
        return aws_client_factory() if access.is_aws and aws_client_factory is not None else access.boto3_client()
    def for_aws(self, aws_conn_id: str | None = None, region_name: str | None = None) -> WarpSpeedSettings:
        """Return these settings with a task's own AWS connection and region (None keeps the configured one)."""
        return replace(self, aws_conn_id=aws_conn_id or self.aws_conn_id, region_name=region_name or self.region_name)

    def require_queues(self) -> tuple[str, str]:
        """Return the request queue and DLQ URLs, or say how to configure them."""
        if not self.queue_url or not self.dead_letter_queue_url:
            raise WarpSpeedConfigError(
                "No SQS queue configured: set [warpspeed] queue_url and dead_letter_queue_url "
                "(or AIRFLOW__WARPSPEED__QUEUE_URL / AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL)"
            )
        return self.queue_url, self.dead_letter_queue_url


def whole_number(key: str, raw: str | None, default: int) -> int:
    """Return the whole number a ``[warpspeed]`` key holds; unset or empty takes ``default``."""
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise WarpSpeedConfigError(
            f"[warpspeed] {key}={raw!r} must be a whole number (unset: {default})"
        ) from None


def configured_int(key: str, default: int) -> int:
    """Return ``[warpspeed] <key>`` as a whole number, read from Airflow's config when a DAG file is parsed.

    Cheap (no network, no database): the scoring DAG reads its window length and retry delay this
    way, without building :class:`WarpSpeedSettings` (whose catalog may be an Airflow connection).
    """
    from airflow.configuration import conf

    return whole_number(key, conf.get(SECTION, key, fallback=None), default)


def preprocessing_backend(settings: WarpSpeedSettings, override: str | None = None) -> str:
    """Return where preprocessing runs: ``glue`` or ``local``.

    ``override``, else ``[warpspeed] preprocessing_backend`` (read once with the settings),
    else ``glue`` when ``compute_backend = emr`` and ``local`` otherwise.
    """
    value = override or settings.preprocessing_backend or ("glue" if settings.compute_backend == "emr" else "local")
    if value not in PREPROCESSING_BACKENDS:
        raise WarpSpeedConfigError(
            f"[warpspeed] preprocessing_backend={value!r}: use one of {', '.join(PREPROCESSING_BACKENDS)}"
        )
    return value


def catalog_from_settings(get: Callable[[str], str | None], home: Path, *, s3: bool = True) -> CatalogConfig:
    """Build the catalog from the ``catalog_type``, ``catalog_uri``, ``warehouse`` and ``region`` keys.

    :param s3: the embedded REST catalog keeps its warehouse on the embedded S3 server (else ``file://``).
    """
    kind = get("catalog_type") or "rest"
    uri = get("catalog_uri")
    if kind == "rest":
        if not uri:
            return CatalogConfig.embedded_rest(home, s3=s3)
        return CatalogConfig(kind="rest", uri=uri, warehouse=get("warehouse") or "", region=get("region"))
    if kind == "sql":
        warehouse = get("warehouse") or (home / "warehouse").as_uri()
        if uri and "://" in uri and not uri.startswith("file:"):
            return CatalogConfig(kind="sql", warehouse=warehouse, uri=uri)
        sqlite_path = local_path(uri or str(home / "catalog.db")).resolve()
        return CatalogConfig(kind="sql", warehouse=warehouse, sqlite_path=sqlite_path)
    if kind == "glue":
        return CatalogConfig(kind="glue", warehouse=get("warehouse") or "", region=get("region"))
    raise WarpSpeedConfigError(
        f"[warpspeed] catalog_type={kind!r}: catalog kind {kind!r} is not supported; use rest, glue or sql "
        "(or set catalog_conn_id to an Airflow connection)"
    )


def load_settings() -> WarpSpeedSettings:
    """Read settings from Airflow's configuration (``[warpspeed]`` section and env vars).

    With ``[warpspeed] catalog_conn_id`` set, the catalog comes from that Airflow connection.
    """
    from airflow.configuration import conf

    from warpspeed.provider_info import CONFIG_OPTIONS

    values = {key: conf.get(SECTION, key, fallback=None) for key in CONFIG_OPTIONS}
    catalog = None
    conn_id = values.get("catalog_conn_id")
    if conn_id:
        from airflow.sdk import BaseHook

        catalog = CatalogConfig.from_airflow_connection(conn_id, BaseHook.get_connection(conn_id))
    return WarpSpeedSettings.from_mapping(values, catalog=catalog)
