"""Check that storage answers before a window takes anything off the queue: one request, one clear error.

A wrong S3 endpoint, a missing bucket or bad credentials would otherwise surface mid-window as a
botocore, pyarrow or Java SDK error (HEAD requests carry no error body: "403", "ACCESS_DENIED"),
after messages were received. :func:`check_storage` makes one signed ``ListObjectsV2`` (at most
one key) under the storage prefix, which names the failure precisely (``NoSuchBucket``,
``InvalidAccessKeyId``, ``SignatureDoesNotMatch``, a refused connection), and raises
:class:`~warpspeed.exceptions.WarpSpeedConfigError` naming the setting to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import S3Storage, Storage, local_path

CREDENTIAL_ERRORS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
                               "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"})
MISSING_BUCKET = frozenset({"NoSuchBucket", "404"})


def check_storage(storage: Storage, prefix: str, settings_named: Mapping[str, str]) -> None:
    """Make one request under ``prefix``; raise a config error naming the setting if it fails.

    :param settings_named: what sets the ``endpoint``, the ``bucket`` and the ``credentials``
        (e.g. ``"catalog property s3.endpoint"``), for the message.
    """
    if not isinstance(storage, S3Storage):
        folder = local_path(prefix)
        if folder.exists() and not folder.is_dir():
            raise WarpSpeedConfigError(f"[warpspeed] storage_prefix={prefix!r} is a file, not a folder")
        return
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    parsed = urlparse(prefix)
    bucket, key = parsed.netloc, parsed.path.strip("/")
    try:
        storage.client.list_objects_v2(Bucket=bucket, Prefix=f"{key}/" if key else "", MaxKeys=1)
    except EndpointConnectionError as err:
        raise WarpSpeedConfigError(
            f"S3 cannot be reached ({err}): check {settings_named['endpoint']}"
        ) from None
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in MISSING_BUCKET:
            raise WarpSpeedConfigError(
                f"bucket {bucket!r} does not exist ({code}): check {settings_named['bucket']} "
                f"(storage_prefix={prefix!r}), or create the bucket"
            ) from None
        if code in CREDENTIAL_ERRORS:
            raise WarpSpeedConfigError(
                f"S3 refused the credentials for bucket {bucket!r} ({code}: "
                f"{err.response.get('Error', {}).get('Message', '')}): check {settings_named['credentials']}"
            ) from None
        raise WarpSpeedConfigError(
            f"S3 answered {code or 'an error'} for bucket {bucket!r}: {err}; check {settings_named['endpoint']}"
        ) from None
    except BotoCoreError as err:  # a connection dropped, a timeout, no credentials at all
        raise WarpSpeedConfigError(
            f"S3 request to bucket {bucket!r} failed ({type(err).__name__}: {err}): check "
            f"{settings_named['endpoint']} and {settings_named['credentials']}"
        ) from None
