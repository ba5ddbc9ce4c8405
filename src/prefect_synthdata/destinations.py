"""Open a publish destination from flow or CLI settings, loading a saved prefect-aws block
by name. The Prefect-aware twin of `storage.open_store`, which takes block objects.

Example:
    >>> from prefect_synthdata.storage import StoreOptions
    >>> open_destination("s3://my-bucket/cv", StoreOptions(region="eu-west-1")).uri()
    's3://my-bucket/cv'
"""

from __future__ import annotations

from typing import Any

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.storage import ObjectStore, StoreOptions, open_store

AWS_BLOCK_TYPES = ("aws-credentials", "minio-credentials", "s3-bucket")


def load_aws_block(name: str) -> Any:
    """The saved prefect-aws block `TYPE/NAME` (a bare NAME means `aws-credentials/NAME`)."""
    slug = name if "/" in name else f"aws-credentials/{name}"
    if slug.partition("/")[0] not in AWS_BLOCK_TYPES:
        raise ConfigurationError(
            f"aws_block {name!r} must be one of {', '.join(t + '/NAME' for t in AWS_BLOCK_TYPES)}"
        )
    try:
        import prefect_aws  # noqa: F401  (registers the block types)
    except ImportError as exc:
        raise ConfigurationError(
            "aws_block needs prefect-aws: pip install 'prefect-synthdata[aws]'"
        ) from exc
    from prefect.blocks.core import Block

    try:
        return Block.load(slug)
    except ValueError as exc:
        raise ConfigurationError(f"no saved prefect-aws block {slug!r}") from exc


def open_destination(uri: str, options: StoreOptions | None = None) -> ObjectStore:
    """The store at `uri`, with credentials from the block named in `options.aws_block` if any."""
    options = options or StoreOptions()
    credentials = load_aws_block(options.aws_block) if options.aws_block else None
    return open_store(uri, options, credentials)
