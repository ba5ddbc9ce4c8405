"""Publish an assembled dataset folder to a store, atomically for readers; read it back.

Order of writes under `<name>/<version>/`: data files, then `manifest.json`, then
`_SUCCESS` (holding the manifest's sha256), then the `<name>/LATEST` pointer. A
version without `_SUCCESS` is not a dataset. Files that already hold the right
bytes are not written again, so an identical re-publish writes nothing and an
interrupted one resumes where it stopped.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.storage.local import LocalStore
    >>> store = LocalStore(tempfile.mkdtemp())
    >>> list_datasets(store)
    {}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prefect_synthdata.dataset.manifest import MANIFEST, SUCCESS, Manifest
from prefect_synthdata.exceptions import (
    ConfigurationError,
    DestinationError,
    IntegrityError,
    NotFoundError,
)
from prefect_synthdata.storage.base import ObjectStore, Upload

LATEST = "LATEST"
SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_segment(kind: str, value: str) -> str:
    """A dataset name or version must be one plain path segment.

    Example:
        >>> check_segment("name", "../etc")
        Traceback (most recent call last):
        ...
        prefect_synthdata.exceptions.ConfigurationError: dataset name '../etc' must match ...
    """
    if not SAFE_SEGMENT.match(value):
        raise ConfigurationError(
            f"dataset {kind} {value!r} must match {SAFE_SEGMENT.pattern} "
            "(letters, digits, '.', '_', '-'; no slashes)"
        )
    return value


@dataclass(frozen=True)
class PublishResult:
    """What a publish did: the version's URI and how many data files it wrote."""

    uri: str
    files_uploaded: int
    files_skipped: int


def read_manifest(store: ObjectStore, name: str, version: str) -> Manifest | None:
    """The manifest of a complete (`_SUCCESS`) version, else None."""
    prefix = f"{name}/{version}"
    if store.read_bytes(f"{prefix}/{SUCCESS}") is None:
        return None
    raw = store.read_bytes(f"{prefix}/{MANIFEST}")
    return Manifest.model_validate_json(raw) if raw is not None else None


def _point_latest(store: ObjectStore, manifest: Manifest) -> None:
    """Point `<name>/LATEST` at this version (written only when it changes)."""
    key, version = f"{manifest.name}/{LATEST}", manifest.version.encode()
    if store.read_bytes(key) != version:
        store.write_bytes(key, version)


def publish(store: ObjectStore, folder: Path, manifest: Manifest) -> PublishResult:
    """Publish the assembled `folder` as `<manifest.name>/<manifest.version>/`."""
    prefix = f"{check_segment('name', manifest.name)}/{check_segment('version', manifest.version)}"
    existing = read_manifest(store, manifest.name, manifest.version)
    if existing is not None:
        if existing.content_sha256() != manifest.content_sha256():
            raise DestinationError(
                f"{store.uri(prefix)} already holds a different dataset; choose another version"
            )
        _point_latest(store, manifest)
        return PublishResult(store.uri(prefix), 0, len(manifest.files))
    pending = [
        Upload(folder / f.path, f"{prefix}/{f.path}", f.size, f.sha256)
        for f in manifest.files
        if not store.matches(f"{prefix}/{f.path}", f.size, f.sha256)
    ]
    store.upload_files(pending)
    store.write_bytes(f"{prefix}/{MANIFEST}", manifest.to_bytes())
    store.write_bytes(f"{prefix}/{SUCCESS}", manifest.sha256().encode())
    _point_latest(store, manifest)
    return PublishResult(store.uri(prefix), len(pending), len(manifest.files) - len(pending))


def list_datasets(store: ObjectStore) -> dict[str, list[str]]:
    """Every dataset name under the store with its complete versions."""
    out = {}
    for name in store.list_dirs(""):
        versions = [
            v
            for v in store.list_dirs(name)
            if store.read_bytes(f"{name}/{v}/{SUCCESS}") is not None
        ]
        if versions:
            out[name] = versions
    return out


def latest_version(store: ObjectStore, name: str) -> str:
    """The version `<name>/LATEST` points at; NotFoundError if none was published."""
    raw = store.read_bytes(f"{name}/{LATEST}")
    if raw is None:
        raise NotFoundError(f"no published dataset named {name!r} under {store.uri()}")
    return raw.decode().strip()


def fetch_dataset(store: ObjectStore, name: str, version: str | None, dest: Path) -> Manifest:
    """Download a complete version to `dest` and verify it against its manifest.

    `version=None` means the latest one. Files already present and correct are kept.
    """
    version = version or latest_version(store, name)
    manifest = read_manifest(store, name, version)
    if manifest is None:
        raise NotFoundError(f"{store.uri(f'{name}/{version}')} is not a complete dataset")
    dest.mkdir(parents=True, exist_ok=True)
    for entry in manifest.files:
        target = dest / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and target.stat().st_size == entry.size):
            store.download_file(f"{name}/{version}/{entry.path}", target)
    (dest / MANIFEST).write_bytes(manifest.to_bytes())
    try:
        manifest.verify(dest)
    except IntegrityError as exc:
        raise IntegrityError(f"dataset {name}/{version} fetched to {dest}: {exc}") from exc
    return manifest
