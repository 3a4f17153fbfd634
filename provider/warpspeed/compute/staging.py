"""Stage the ``spark_jobs`` package: one zip for ``--py-files``, built one way for every backend.

Local Spark, EMR steps and the Glue job all run the same ``spark_jobs/`` scripts with the same
``spark_jobs.zip``; :func:`package_spark_jobs` builds it and :func:`stage_to_s3` uploads it
(with the scripts) under a content-addressed folder, skipping what is already there.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage import join_uri

ZIP_NAME = "spark_jobs.zip"


def spark_jobs_dir() -> Path:
    """Return the folder of the ``spark_jobs`` package."""
    import spark_jobs

    return Path(spark_jobs.__file__).resolve().parent


def spark_jobs_script(name: str) -> Path:
    """Return the local path of a ``spark_jobs/`` script, or say it is missing."""
    path = spark_jobs_dir() / name
    if not path.is_file():
        raise WarpSpeedConfigError(f"{path} is missing")
    return path


def package_spark_jobs(dest: Path) -> Path:
    """Zip the ``spark_jobs`` package for ``--py-files`` (as it is shipped to EMR and Glue)."""
    src = spark_jobs_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*.py")):
            zf.write(path, Path("spark_jobs") / path.relative_to(src))
    tmp.replace(dest)
    return dest


def code_digest() -> str:
    """Return a short fingerprint of the ``spark_jobs`` scripts (the staging folder's name)."""
    digest = hashlib.sha256()
    for path in sorted(spark_jobs_dir().glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def stage_to_s3(s3: Any, root: str, *, replace: bool = False) -> str:
    """Upload ``spark_jobs.zip`` and the job scripts under ``root`` (``s3://``); return ``root``.

    :param replace: upload even when an object exists (a fixed, not content-addressed, root).
    """
    parsed = urlparse(root)
    if parsed.scheme not in ("s3", "s3a"):
        raise WarpSpeedConfigError(
            f"{root!r}: the emr and glue backends stage code on S3; use an s3:// storage prefix"
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = {ZIP_NAME: package_spark_jobs(Path(tmp) / ZIP_NAME).read_bytes()}
    files |= {p.name: p.read_bytes() for p in sorted(spark_jobs_dir().glob("*.py"))}
    for name, body in files.items():
        key = f"{parsed.path.strip('/')}/{name}"
        if not replace:
            try:
                s3.head_object(Bucket=parsed.netloc, Key=key)
                continue
            except ClientError:
                pass
        s3.put_object(Bucket=parsed.netloc, Key=key, Body=body)
    return root


def content_addressed_root(storage_prefix: str) -> str:
    """Return the staging folder of this code version under the storage prefix."""
    return join_uri(storage_prefix, "code", code_digest())
