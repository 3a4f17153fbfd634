"""Keep catalog secrets off command lines: anyone on the host can read a process's command line.

Catalog properties and Spark settings whose names say they hold a secret
(:func:`warpspeed.config.catalog.is_secret`: a token, a credential, a password, a secret key)
travel another way to the processes that need them:

- a pyiceberg subprocess gets them as ``PYICEBERG_CATALOG__<NAME>__<KEY>`` environment variables
  (a process's environment is readable by its own user only), which ``load_catalog`` merges in;
- a Spark JVM gets them from a properties file (0600, in the state folder's 0700 ``run/``) that
  ``spark-submit --properties-file`` names (the gateway pyspark starts for an in-process
  ``SparkSession`` gets that option from ``PYSPARK_SUBMIT_ARGS``). Not ``SPARK_CONF_DIR``: Spark
  puts that folder first on the JVM's classpath, and a classpath that changes with the secrets
  cannot use the class archive of local Spark (:mod:`warpspeed.embedded.spark_archive`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from warpspeed.config.catalog import is_secret

log = logging.getLogger(__name__)


def split_secrets(conf: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Return ``(public, secret)``: ``conf`` without its secrets, and its secrets."""
    public = {k: v for k, v in conf.items() if not is_secret(k)}
    return public, {k: v for k, v in conf.items() if is_secret(k)}


def pyiceberg_env(catalog_name: str, properties: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Return ``(public properties, environment)``: the secret ones as ``PYICEBERG_CATALOG__*`` variables.

    pyiceberg reads ``__`` as ``.`` and ``_`` as ``-`` in those names; a secret whose key holds an
    underscore cannot be written that way and stays among the public properties (with a warning).
    """
    public, secret = split_secrets(properties)
    env: dict[str, str] = {}
    for key, value in secret.items():
        if "_" in key or "_" in catalog_name:
            log.warning("catalog property %r cannot travel as an environment variable; passing it as an argument", key)
            public[key] = value
            continue
        env[f"PYICEBERG_CATALOG__{catalog_name.upper()}__{key.replace('.', '__').replace('-', '_').upper()}"] = value
    return public, env


def _escape(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError("a Spark setting holds a line break")
    return text.replace("\\", "\\\\")


def spark_secret_file(conf: Mapping[str, str], run_dir: Path) -> tuple[dict[str, str], Path | None]:
    """Return ``(public conf, properties file)``: ``conf`` without its secrets, and a private file that holds them.

    The file is written once per distinct set of secrets under ``run_dir`` (the state folder's
    ``run/``); settings of an existing ``$SPARK_CONF_DIR/spark-defaults.conf`` come first in it
    (Spark reads no ``spark-defaults.conf`` when given a properties file). None when ``conf`` has no secret.
    """
    public, secret = split_secrets(conf)
    if not secret:
        return public, None
    lines = [f"{_escape(k)} {_escape(v)}" for k, v in sorted(secret.items())]
    inherited = Path(os.environ["SPARK_CONF_DIR"]) / "spark-defaults.conf" if os.environ.get("SPARK_CONF_DIR") else None
    if inherited is not None and inherited.is_file():
        lines = [*inherited.read_text(encoding="utf-8").splitlines(), *lines]
    text = "\n".join(lines) + "\n"
    target = run_dir / f"spark-secrets-{hashlib.sha256(text.encode()).hexdigest()[:12]}.conf"
    if not target.is_file():
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = run_dir / f".spark-secrets.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    return public, target


def properties_file_args(path: Path | None) -> list[str]:
    """Return the ``spark-submit`` options that read ``path`` (none for None)."""
    return ["--properties-file", str(path)] if path is not None else []


def with_gateway_properties(path: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the ``PYSPARK_SUBMIT_ARGS`` that makes pyspark's gateway read ``path`` (empty for None)."""
    if path is None:
        return {}
    words, rest = shlex.split(environ.get("PYSPARK_SUBMIT_ARGS", "pyspark-shell")), []
    while words:  # a properties file named before (an earlier session of this process) gives way
        word = words.pop(0)
        if word == "--properties-file" and words:
            words.pop(0)
        elif not word.startswith("--properties-file="):
            rest.append(word)
    return {"PYSPARK_SUBMIT_ARGS": shlex.join([*properties_file_args(path), *rest])}
