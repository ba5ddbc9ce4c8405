"""What a destination holds: every complete dataset version with its counts, size, when
it was published and whether `LATEST` points at it (`synthdata datasets ls`).

Example:
    >>> import tempfile
    >>> from prefect_synthdata.storage.local import LocalStore
    >>> list_versions(LocalStore(tempfile.mkdtemp()))
    []
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from prefect_synthdata.dataset.manifest import SUCCESS
from prefect_synthdata.exceptions import NotFoundError
from prefect_synthdata.storage.base import ObjectStore
from prefect_synthdata.storage.local import LocalStore
from prefect_synthdata.storage.publish import LATEST, list_datasets, read_manifest


@dataclass(frozen=True)
class VersionInfo:
    """One complete version of a published dataset."""

    name: str
    version: str
    num_images: int
    num_annotations: int
    size: int
    created: datetime | None
    latest: bool

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "created": self.created.isoformat() if self.created else None}


def list_versions(store: ObjectStore) -> list[VersionInfo]:
    """Every complete version under `store`, by name, oldest first within a name.

    NotFoundError if the store is a local directory that does not exist.
    """
    if isinstance(store, LocalStore) and not store.root.is_dir():
        raise NotFoundError(f"{store.root} does not exist or is not a directory")
    found = []
    for name, versions in list_datasets(store).items():
        latest = (store.read_bytes(f"{name}/{LATEST}") or b"").decode().strip()
        rows = []
        for version in versions:
            manifest = read_manifest(store, name, version)
            if manifest is None:  # removed since it was listed
                continue
            rows.append(
                VersionInfo(
                    name=name,
                    version=version,
                    num_images=manifest.num_images,
                    num_annotations=manifest.num_annotations,
                    size=sum(f.size for f in manifest.files),
                    created=store.modified_at(f"{name}/{version}/{SUCCESS}"),
                    latest=version == latest,
                )
            )
        found += sorted(rows, key=lambda row: (row.created is None, row.created, row.version))
    return found
