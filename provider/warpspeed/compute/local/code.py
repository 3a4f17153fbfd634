"""The job code local runs use: staged under the storage prefix and copied down, as a cluster gets it.

On EMR a step copies ``spark_jobs.zip`` from the content-addressed folder the backend staged it in
(``<storage_prefix>/code/<digest>/``). Locally, with an ``s3://`` storage prefix, the warm Spark
engine, ``spark-submit`` and the single-node subprocess do the same: the code is staged there (a
HEAD per file, an upload of what is missing) and a local copy of the staged zip is what they run.
With a ``file://`` prefix the freshly built zip is used as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from warpspeed.compute.staging import ZIP_NAME, code_digest, content_addressed_root, package_spark_jobs, stage_to_s3
from warpspeed.config.settings import WarpSpeedSettings


def staged_code(settings: WarpSpeedSettings) -> Path:
    """Return the local ``spark_jobs.zip`` to run: a copy of the one staged on S3, or the one just built."""
    build = settings.home / "build"
    built = package_spark_jobs(build / ZIP_NAME)
    if not settings.storage_prefix.startswith(("s3://", "s3a://")):
        return built
    client = settings.s3_access().boto3_client()
    root = stage_to_s3(client, content_addressed_root(settings.storage_prefix))
    copy = build / f"spark_jobs-{code_digest()}.zip"
    if not copy.is_file():
        staged = urlparse(f"{root}/{ZIP_NAME}")
        tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
        client.download_file(staged.netloc, staged.path.lstrip("/"), str(tmp))
        os.replace(tmp, copy)  # concurrent tasks download the same bytes; the last rename wins
    return copy
