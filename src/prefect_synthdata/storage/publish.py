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

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from prefect_synthdata.dataset.manifest import MANIFEST, SUCCESS, FileEntry, Manifest, sha256_file
from prefect_synthdata.exceptions import (
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    VersionConflictError,
)
from prefect_synthdata.storage.base import Download, ObjectStore, Upload

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


def split_uri(uri: str) -> tuple[str, str, str]:
    """`<root>/<name>/<version>` into its store root, dataset name and version.

    Example:
        >>> split_uri("s3://bucket/datasets/shapes/v1")
        ('s3://bucket/datasets', 'shapes', 'v1')
    """
    parts = uri.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or not parts[0]:
        raise ConfigurationError(
            f"{uri!r} is not a dataset version URI (<destination>/<name>/<version>)"
        )
    return parts[0], check_segment("name", parts[1]), check_segment("version", parts[2])


@dataclass(frozen=True)
class PublishResult:
    """What a publish did: the version's URI and how many data files it wrote."""

    uri: str
    files_uploaded: int
    files_skipped: int


def _is_plain_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def read_manifest(store: ObjectStore, name: str, version: str) -> Manifest | None:
    """The manifest of a complete (`_SUCCESS`) version, else None.

    IntegrityError if `manifest.json` is not the one `_SUCCESS` vouches for, or lists
    a path that would land outside the dataset folder.
    """
    prefix = f"{name}/{version}"
    marker = store.read_bytes(f"{prefix}/{SUCCESS}")
    if marker is None:
        return None
    raw = store.read_bytes(f"{prefix}/{MANIFEST}")
    if raw is None or hashlib.sha256(raw).hexdigest() != marker.decode().strip():
        raise IntegrityError(
            f"{store.uri(prefix)}: {MANIFEST} is missing or does not match {SUCCESS}"
        )
    manifest = Manifest.model_validate_json(raw)
    unsafe = [f.path for f in manifest.files if not _is_plain_relative(f.path)]
    if unsafe:
        raise IntegrityError(
            f"{store.uri(prefix)}: {MANIFEST} lists a path outside the dataset: {unsafe[0]!r}"
        )
    return manifest


def _point_latest(store: ObjectStore, name: str, version: str) -> None:
    if store.read_bytes(f"{name}/{LATEST}") != version.encode():
        store.write_bytes(f"{name}/{LATEST}", version.encode())


def publish(store: ObjectStore, folder: Path, manifest: Manifest) -> PublishResult:
    """Publish the assembled `folder` as `<manifest.name>/<manifest.version>/`.

    An identical version already there makes this a no-op (nothing is written);
    a different one is a VersionConflictError. Data files the store already holds
    (same size and sha256) are skipped, so a publish that was interrupted resumes.
    """
    prefix = f"{check_segment('name', manifest.name)}/{check_segment('version', manifest.version)}"
    existing = read_manifest(store, manifest.name, manifest.version)
    if existing is not None:
        if existing.content_sha256() != manifest.content_sha256():
            raise VersionConflictError(
                f"{store.uri(prefix)} already holds a different dataset; choose another version"
            )
        _point_latest(store, manifest.name, manifest.version)
        return PublishResult(store.uri(prefix), 0, len(manifest.files))
    pending = store.missing(
        [Upload(folder / f.path, f"{prefix}/{f.path}", f.size, f.sha256) for f in manifest.files]
    )
    store.upload_files(pending)
    manifest_bytes = manifest.to_bytes()  # `_SUCCESS` holds its sha256 (`Manifest.sha256`)
    store.write_bytes(f"{prefix}/{MANIFEST}", manifest_bytes)
    store.write_bytes(f"{prefix}/{SUCCESS}", hashlib.sha256(manifest_bytes).hexdigest().encode())
    _point_latest(store, manifest.name, manifest.version)
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


def _holds(path: Path, entry: FileEntry) -> bool:
    return (
        path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256
    )


def fetch_dataset(store: ObjectStore, name: str, version: str | None, dest: Path) -> Manifest:
    """Download a complete version to `dest` and verify every file against its manifest.

    `version=None` means the latest one. Files already present and correct are kept,
    so a training stage can call this on every start and pay only for what changed.

    Example:
        >>> from prefect_synthdata.storage import open_store
        >>> fetch_dataset(open_store("s3://bucket/datasets"), "demo", None, Path("data"))  # doctest: +SKIP
    """
    version = check_segment(
        "version", version or latest_version(store, check_segment("name", name))
    )
    manifest = read_manifest(store, name, version)
    if manifest is None:
        raise NotFoundError(f"{store.uri(f'{name}/{version}')} is not a complete dataset")
    stale = [entry for entry in manifest.files if not _holds(dest / entry.path, entry)]
    store.download_files(
        [Download(f"{name}/{version}/{entry.path}", dest / entry.path) for entry in stale]
    )
    bad = [entry.path for entry in stale if not _holds(dest / entry.path, entry)]
    if bad:
        raise IntegrityError(
            f"dataset {name}/{version} fetched to {dest}: {len(bad)} file(s) do not match the manifest, "
            f"e.g. {bad[0]}"
        )
    (dest / MANIFEST).write_bytes(manifest.to_bytes())
    return manifest
