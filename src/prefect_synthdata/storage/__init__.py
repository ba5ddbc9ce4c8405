"""Where datasets are published: a local directory or an S3 prefix, chosen by URI.

Example:
    >>> open_store("./datasets").uri().endswith("datasets")
    True
    >>> open_store("s3://my-bucket/cv", StoreOptions(region="eu-west-1")).uri()
    's3://my-bucket/cv'
"""

from __future__ import annotations

from typing import Any

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.storage.base import Download, ObjectStore, Upload
from prefect_synthdata.storage.local import LocalStore
from prefect_synthdata.storage.options import StoreOptions


def open_store(
    uri: str, options: StoreOptions | None = None, credentials: Any = None
) -> ObjectStore:
    """The store for `uri`: a path or `file://` URI (local), or `s3://bucket/prefix`.

    `credentials` is an optional prefect-aws `AwsCredentials`, `MinIOCredentials` or
    `S3Bucket` block object; without one, S3 uses `options.profile` or boto3's default chain.
    """
    options = options or StoreOptions()
    if uri.startswith("s3://"):
        from prefect_synthdata.storage.s3 import S3Store

        return S3Store.connect(uri, options, credentials)
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigurationError(f"unsupported destination {uri!r}: use a path, file:// or s3://")
    given = options.connection_settings() + (["credentials"] if credentials is not None else [])
    if given:
        raise ConfigurationError(
            f"{', '.join(given)} only apply to s3:// destinations, not {uri!r}"
        )
    return LocalStore(uri.removeprefix("file://"))


__all__ = ["Download", "LocalStore", "ObjectStore", "StoreOptions", "Upload", "open_store"]
