"""Stage the Spark job packages: one zip for ``--py-files``, built one way for every backend.

The job packages are ``spark_jobs`` (scoring, feature preprocessing) and ``maintenance`` (Iceberg
maintenance), found wherever this provider was installed (:mod:`warpspeed.jobs`: top-level
folders of a checkout, ``warpspeed/jobs/`` in the wheel); in the zip both stay top-level
packages, so job code runs unchanged on a cluster. Local Spark, EMR steps and the Glue job all
run the same scripts with the same ``spark_jobs.zip`` (both packages inside);
:func:`package_spark_jobs` builds it and
:func:`stage_to_s3` uploads it (with the scripts) under a folder, skipping what is already there
when the folder is content-addressed. :func:`stage_bootstrap` stages the EMR bootstrap action
(``install_python_deps.sh``, shipped in the wheel) the same way, in a folder named by its own
content, so a changed script makes new clusters (the cluster profile hash covers its path) while
changed job code does not.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.jobs import JOB_PACKAGES, job_package_dirs
from warpspeed.storage.documents import join_uri

ZIP_NAME = "spark_jobs.zip"
BOOTSTRAP_SCRIPT = "install_python_deps.sh"


def spark_jobs_dir() -> Path:
    """Return the folder of the ``spark_jobs`` package."""
    return job_package_dirs()[0]


def job_scripts() -> list[Path]:
    """Return every job package's top-level scripts (their file names are unique)."""
    return sorted((p for d in job_package_dirs() for p in d.glob("*.py")), key=lambda p: p.name)


def spark_jobs_script(name: str) -> Path:
    """Return the local path of a job script (``score_batch.py``, ``iceberg_maintenance.py``…)."""
    for folder in job_package_dirs():
        if (folder / name).is_file():
            return folder / name
    raise WarpSpeedConfigError(f"no job script {name!r} in {', '.join(JOB_PACKAGES)}")


def package_spark_jobs(dest: Path) -> Path:
    """Zip the job packages for ``--py-files`` (as they are shipped to EMR and Glue).

    Concurrent tasks (two workloads' score tasks) may build the same ``dest`` at once: each
    writes a temporary file of its own and atomically replaces ``dest`` with it, so no writer
    trips over another and a reader never sees a half-written zip.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp", delete=False) as fh:
        tmp = Path(fh.name)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, src in zip(JOB_PACKAGES, job_package_dirs(), strict=True):
                for path in sorted(src.rglob("*.py")):
                    zf.write(path, Path(name) / path.relative_to(src))
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def code_digest() -> str:
    """Return a short fingerprint of the job scripts (the staging folder's name)."""
    digest = hashlib.sha256()
    for path in job_scripts():
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _upload(s3: Any, root: str, files: dict[str, bytes], replace: bool) -> str:
    """Put ``files`` under ``root`` (``s3://``), skipping those already there unless ``replace``."""
    parsed = urlparse(root)
    if parsed.scheme not in ("s3", "s3a"):
        raise WarpSpeedConfigError(
            f"{root!r}: the emr and glue backends stage code on S3; use an s3:// storage prefix"
        )
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


def stage_to_s3(s3: Any, root: str, *, replace: bool = False) -> str:
    """Upload ``spark_jobs.zip`` and the job scripts under ``root`` (``s3://``); return ``root``.

    :param replace: upload even when an object exists (a fixed, not content-addressed, root).
    """
    with tempfile.TemporaryDirectory() as tmp:
        files = {ZIP_NAME: package_spark_jobs(Path(tmp) / ZIP_NAME).read_bytes()}
    files |= {p.name: p.read_bytes() for p in job_scripts()}
    return _upload(s3, root, files, replace)


def bootstrap_script() -> bytes:
    """Return the EMR bootstrap action shipped in the wheel (``compute/emr/bootstrap/``)."""
    return (importlib.resources.files("warpspeed.compute.emr") / "bootstrap" / BOOTSTRAP_SCRIPT).read_bytes()


def bootstrap_root(storage_prefix: str) -> str:
    """Return the content-addressed folder of the bootstrap action under the storage prefix."""
    return join_uri(storage_prefix, "bootstrap", hashlib.sha256(bootstrap_script()).hexdigest()[:16])


def stage_bootstrap(s3: Any, storage_prefix: str) -> str:
    """Upload the bootstrap action to :func:`bootstrap_root` unless it is there; return that folder."""
    return _upload(s3, bootstrap_root(storage_prefix), {BOOTSTRAP_SCRIPT: bootstrap_script()}, replace=False)


def content_addressed_root(storage_prefix: str) -> str:
    """Return the staging folder of this code version under the storage prefix."""
    return join_uri(storage_prefix, "code", code_digest())
