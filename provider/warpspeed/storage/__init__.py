"""Object storage: small documents under a storage prefix, on a local folder or S3."""
