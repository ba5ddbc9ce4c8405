"""Where datasets are published: a local directory or an S3 prefix, chosen by URI.

Example:
    >>> open_store("./datasets").uri().endswith("datasets")
    True
"""

from __future__ import annotations

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.storage.base import ObjectStore, Upload
from prefect_synthdata.storage.local import LocalStore


def open_store(uri: str) -> ObjectStore:
    """The store for `uri`: a path or `file://` URI (local), or `s3://bucket/prefix`."""
    if uri.startswith("s3://"):
        raise ConfigurationError("s3:// destinations are not available in this build")
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigurationError(f"unsupported destination {uri!r}: use a path, file:// or s3://")
    return LocalStore(uri.removeprefix("file://"))


__all__ = ["LocalStore", "ObjectStore", "Upload", "open_store"]
