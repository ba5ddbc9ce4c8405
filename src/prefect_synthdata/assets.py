"""Prefect assets for lineage: a published dataset, and the models trained on it.

A dataset version's asset key is its URI (`s3://bucket/prefix/name/version`, or
`file:///...` for a local folder); a model's is its folder's `file://` URI. Publishing
records the dataset's materialization; the train stage records its model's, naming the
dataset as the upstream asset, so Prefect's asset graph links the two (Prefect 3.8's
self-hosted UI has no assets page: the artifacts carry the same URIs).

Example:
    >>> dataset_asset_key("s3://bucket/cv/shapes/v1")
    's3://bucket/cv/shapes/v1'
    >>> dataset_asset_key("/data/shapes/v1")
    'file:///data/shapes/v1'
    >>> dataset_asset_key("/data/my shapes/v1") is None
    True
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.assets import Asset, AssetProperties, materialize
from pydantic import ValidationError


def dataset_asset_key(uri: str) -> str | None:
    """The asset key of a dataset (or model) URI or path; None when Prefect refuses it
    (a key cannot hold spaces, `%` and a few other characters, nor exceed 512 characters)."""
    key = uri if "://" in uri else Path(uri).absolute().as_uri()
    try:
        Asset(key=key)
    except ValidationError:
        return None
    return key


def asset(uri: str, name: str, description: str) -> Asset | None:
    """The asset of `uri` with a readable name, or None when its URI cannot be a key."""
    key = dataset_asset_key(uri)
    if key is None:
        return None
    return Asset(key=key, properties=AssetProperties(name=name, description=description))


def record_materialization(
    produced: Asset,
    metadata: dict[str, Any],
    upstream: list[Asset] | None = None,
    by: str = "prefect-synthdata",
) -> None:
    """Emit `prefect.asset.materialization.succeeded` for `produced` (with `metadata`), its
    upstream assets as related resources, from a task run of the current flow run."""

    def record_asset_materialization() -> None:
        produced.add_metadata(metadata)

    task: Callable[[], None] = materialize(
        produced,
        by=by,
        asset_deps=list[Asset | str](upstream or []),
        name="record_asset_materialization",
    )(record_asset_materialization)
    task()
