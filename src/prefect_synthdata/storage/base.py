"""The small object-store interface that publishing is written against.

Keys are `/`-separated paths relative to the destination root. `local` and `s3`
implement it; `storage.publish` holds the one publishing algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Upload:
    """One file to put at `key`, with its known size and sha256 (hex)."""

    path: Path
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Download:
    """One object at `key` to copy to the local file `path`."""

    key: str
    path: Path


class ObjectStore(Protocol):
    """A destination for datasets: a local directory or an S3 prefix."""

    def uri(self, key: str = "") -> str:
        """The URI of `key` (or of the root) under this store."""
        ...

    def check_writable(self) -> None:
        """Raise DestinationError unless objects can be listed, read and written here (a preflight)."""
        ...

    def missing(self, uploads: list[Upload]) -> list[Upload]:
        """The uploads whose key does not already hold exactly these bytes (by size and sha256)."""
        ...

    def upload_files(self, uploads: list[Upload]) -> None:
        """Write every upload; each object appears whole or not at all."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write a small object whole."""
        ...

    def create_bytes(self, key: str, data: bytes) -> bool:
        """Write a small object whole only if `key` is absent; whether this call created it.

        Of concurrent callers exactly one gets True (the publish claim rests on this).
        """
        ...

    def read_bytes(self, key: str) -> bytes | None:
        """A small object's bytes, or None if absent."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under the folder `prefix`, relative to the store's root."""
        ...

    def delete_keys(self, keys: list[str]) -> None:
        """Remove these objects (absent ones are fine)."""
        ...

    def modified_at(self, key: str) -> datetime | None:
        """When the object at `key` was last written (UTC), or None if absent."""
        ...

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the immediate child folders under `prefix` (sorted)."""
        ...

    def download_files(self, downloads: list[Download]) -> None:
        """Copy each object to its local path; a file appears whole or not at all."""
        ...
