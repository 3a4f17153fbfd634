"""Read ``[warpspeed]`` and an AWS connection for the ``warpspeed`` command without importing Airflow.

Importing Airflow's configuration takes seconds (2-5 s on a busy laptop, more without compiled
bytecode), which ``warpspeed send`` and ``warpspeed scores`` paid on every call for a handful of
values that the environment already holds after ``eval "$(warpspeed stack env)"``. This module
reads them the way Airflow does, in Airflow's order: the ``AIRFLOW__WARPSPEED__<KEY>`` variable,
else the ``[warpspeed]`` section of Airflow's config file (``$AIRFLOW_CONFIG``, else
``$AIRFLOW_HOME/airflow.cfg``, else ``~/airflow/airflow.cfg``; ``%`` interpolation and ``$VAR``
/ ``~`` expansion as Airflow applies them), else the provider's default; and an AWS connection
from its ``AIRFLOW_CONN_<ID>`` variable in JSON form.

Whatever Airflow would resolve in a way this reader does not is left to Airflow: each function
returns ``None`` and the caller imports Airflow. That is the case for a ``catalog_conn_id``
connection, ``*_cmd`` / ``*_secret`` options, Airflow's unit-test mode, a config file this
reader cannot parse, a secrets backend (it is asked before the environment), a connection that
is not in the environment (the metadata database), in URI form, or with settings beyond the
endpoint, region and keys.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "AIRFLOW__WARPSPEED__"
SECTION = "warpspeed"
PLAIN_CONNECTION_FIELDS = {"conn_type", "login", "password", "extra", "description"}
"""The fields of a JSON connection this reader builds a client from (``host``, ``schema`` and ``port`` are
empty in an AWS connection; anything else goes to Airflow)."""
PLAIN_AWS_EXTRAS = {"endpoint_url", "region_name"}
"""The connection extras this reader applies; any other (role assumption, botocore config…) goes to Airflow."""


def expand_env_var(value: str) -> str:
    """Expand ``$VAR`` and ``~`` until nothing changes, as Airflow's ``expand_env_var`` does."""
    while True:
        expanded = os.path.expanduser(os.path.expandvars(value))
        if expanded == value:
            return expanded
        value = expanded


def airflow_config_file(environ: Mapping[str, str]) -> Path:
    """Return the config file Airflow reads: ``$AIRFLOW_CONFIG``, else ``$AIRFLOW_HOME/airflow.cfg``."""
    if environ.get("AIRFLOW_CONFIG") is not None:
        return Path(expand_env_var(environ["AIRFLOW_CONFIG"]))
    return Path(expand_env_var(environ.get("AIRFLOW_HOME", "~/airflow"))) / "airflow.cfg"


def _read_config_file(environ: Mapping[str, str]) -> configparser.ConfigParser | None:
    """Return Airflow's config file parsed as Airflow parses it (empty when missing), or None if unreadable."""
    parser = configparser.ConfigParser()
    try:
        parser.read(airflow_config_file(environ), encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return parser


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("t", "true", "1")


def warpspeed_values(environ: Mapping[str, str] | None = None) -> dict[str, str | None] | None:
    """Return ``{key: value}`` of every ``[warpspeed]`` option as Airflow's ``conf.get`` returns it.

    :returns: None when Airflow has to answer (see the module's docstring).
    """
    from warpspeed.provider_info import CONFIG_OPTIONS

    env = os.environ if environ is None else environ
    parser = _read_config_file(env)
    if parser is None:
        return None
    if _truthy(env.get("AIRFLOW__CORE__UNIT_TEST_MODE")) or (
        "AIRFLOW__CORE__UNIT_TEST_MODE" not in env and _truthy(parser.get("core", "unit_test_mode", fallback=None))
    ):
        return None  # Airflow then reads its unit-test configuration instead of the file
    indirect = [k for k in env if k.startswith(ENV_PREFIX) and k.endswith(("_CMD", "_SECRET"))]
    if parser.has_section(SECTION):
        indirect += [k for k in parser.options(SECTION) if k.endswith(("_cmd", "_secret"))]
    if indirect:
        return None
    values: dict[str, str | None] = {}
    try:
        for key, option in CONFIG_OPTIONS.items():
            name = f"{ENV_PREFIX}{key.upper()}"
            if name in env:
                values[key] = expand_env_var(env[name])
            elif parser.has_option(SECTION, key):
                values[key] = expand_env_var(parser.get(SECTION, key))
            else:
                values[key] = option["default"]
    except configparser.Error:  # an interpolation Airflow would refuse too: let it say so
        return None
    if values.get("catalog_conn_id"):
        return None
    return values


def settings_without_airflow(environ: Mapping[str, str] | None = None) -> Any:
    """Return :class:`~warpspeed.config.settings.WarpSpeedSettings` as ``load_settings`` would, or None.

    None: Airflow has to answer (call :func:`warpspeed.config.settings.load_settings`).
    """
    from warpspeed.config.settings import WarpSpeedSettings

    values = warpspeed_values(environ)
    return None if values is None else WarpSpeedSettings.from_mapping(values)


def _secrets_backend(environ: Mapping[str, str]) -> bool:
    """Tell whether Airflow asks a secrets backend for connections before the environment."""
    if "AIRFLOW__SECRETS__BACKEND" in environ:
        return bool(environ["AIRFLOW__SECRETS__BACKEND"].strip())
    parser = _read_config_file(environ)
    return parser is None or bool((parser.get("secrets", "backend", fallback="") or "").strip())


def plain_aws_connection(conn_id: str, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Return ``login``, ``password``, ``endpoint_url``, ``region_name`` of a plain AWS connection, or None.

    Plain: in the environment (``AIRFLOW_CONN_<ID>``) as JSON, of type ``aws``, with no extra but
    the endpoint and the region, and no secrets backend configured.
    """
    env = os.environ if environ is None else environ
    raw = env.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw is None or not raw.lstrip().startswith("{") or _secrets_backend(env):
        return None
    try:
        conn = json.loads(raw)
        extra = conn.get("extra") or {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
    except (ValueError, AttributeError):
        return None
    if (not isinstance(extra, dict) or conn.get("conn_type") != "aws" or not set(conn) <= PLAIN_CONNECTION_FIELDS
            or not set(extra) <= PLAIN_AWS_EXTRAS):
        return None
    return {"login": conn.get("login"), "password": conn.get("password"),
            "endpoint_url": extra.get("endpoint_url"), "region_name": extra.get("region_name")}


def aws_client_without_airflow(service: str, conn_id: str, environ: Mapping[str, str] | None = None) -> Any:
    """Return a boto3 client of ``service`` for a plain AWS connection (as Airflow's AWS hook builds it), or None."""
    conn = plain_aws_connection(conn_id, environ)
    if conn is None:
        return None
    import boto3

    session = boto3.session.Session(aws_access_key_id=conn["login"], aws_secret_access_key=conn["password"],
                                    region_name=conn["region_name"])
    make_client: Any = session.client  # any service, by name (the stubs type one literal per service)
    return make_client(service, endpoint_url=conn["endpoint_url"])
