"""`manifest.json`: every file of a dataset with its size and sha256, plus what made it.

Example:
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = f.write_text("hi")
    >>> file_entry(f, "a.txt").sha256[:8]
    '8f434346'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from prefect_synthdata.exceptions import IntegrityError

CHUNK = 1024 * 1024
MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
ANNOTATIONS = "annotations.coco.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileEntry(BaseModel):
    """One data file, by its path relative to the dataset root."""

    path: str
    size: int
    sha256: str


def file_entry(path: Path, relative: str) -> FileEntry:
    """A `FileEntry` for the file at `path`, recorded as `relative`."""
    return FileEntry(path=relative, size=path.stat().st_size, sha256=sha256_file(path))


class SplitEntry(BaseModel):
    """One split of a dataset: its COCO file and what it holds (whole jobs only)."""

    name: str
    file: str
    num_jobs: int
    num_images: int
    num_annotations: int


class Manifest(BaseModel):
    """The content of `manifest.json`. Deterministic: no timestamps, sorted files."""

    name: str
    version: str
    provider: str
    generator: str
    batch_id: str
    is_preview: bool
    num_jobs: int
    num_images: int
    num_annotations: int
    categories: list[str]
    num_ignore_regions: int = 0
    splits: list[SplitEntry] = Field(default_factory=list)
    job_ids: list[str] = Field(default_factory=list)
    job_params: list[dict[str, Any]]
    files: list[FileEntry]

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True).encode()

    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def content_sha256(self) -> str:
        """sha256 over the data files alone: equal for equal data, whichever batch made it."""
        listing = json.dumps([f.model_dump() for f in self.files], sort_keys=True)
        return hashlib.sha256(listing.encode()).hexdigest()

    def verify(self, root: Path) -> None:
        """Check every listed file under `root` by size and sha256; IntegrityError names the first bad one."""
        for entry in self.files:
            path = root / entry.path
            if (
                not path.is_file()
                or path.stat().st_size != entry.size
                or sha256_file(path) != entry.sha256
            ):
                raise IntegrityError(f"{entry.path}: missing or does not match the manifest")


class PublishedDataset(BaseModel):
    """A published dataset in brief, as a run returns it: where it is and what it holds.

    (`Manifest` is the content of the dataset's `manifest.json`, every file included.)
    """

    uri: str
    name: str
    version: str
    batch_id: str
    generator: str
    num_images: int
    num_annotations: int
    categories: list[str]
    manifest_sha256: str
    content_sha256: str
    files_uploaded: int = 0

    @classmethod
    def from_manifest(cls, manifest: Manifest, uri: str, files_uploaded: int) -> PublishedDataset:
        """The summary of the dataset `manifest` describes, published at `uri`."""
        return cls(
            uri=uri,
            name=manifest.name,
            version=manifest.version,
            batch_id=manifest.batch_id,
            generator=manifest.generator,
            num_images=manifest.num_images,
            num_annotations=manifest.num_annotations,
            categories=manifest.categories,
            manifest_sha256=manifest.sha256(),
            content_sha256=manifest.content_sha256(),
            files_uploaded=files_uploaded,
        )
